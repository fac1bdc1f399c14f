/**
 * The upstream body: the client's own bytes when the gateway would change nothing (no
 * re-serialising of a long history), a serialised copy otherwise, and never bytes whose top-level
 * keys repeat (the upstream could read another value than the one checked here).
 */
import { isRope, optimizeNextInvocation } from "bun:jsc";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  encodedAtSend,
  partsText,
  payloadUnchanged,
  readBody,
  toUpstreamPayload,
  uniqueTopLevelKeys,
  upstreamBody,
  upstreamParts,
  upstreamText,
} from "../../src/proxy/payload.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

const codexBody = {
  model: "gpt-5.2",
  instructions: "You are Codex.",
  input: [{ type: "message", role: "user", content: [{ type: "input_text", text: 'say "hi" \\ {[' }] }],
  tools: [],
  store: false,
  stream: true,
  include: ["reasoning.encrypted_content"],
  prompt_cache_key: "k",
};

describe("top-level keys", () => {
  test("unique keys are told from repeated ones, whatever the nesting, strings and escapes", () => {
    expect(uniqueTopLevelKeys(JSON.stringify(codexBody))).toBe(true);
    expect(uniqueTopLevelKeys(' { "a" : {"a":1,"a":2}, "b":["a","a"], "c":"\\"a\\"" } ')).toBe(true);
    expect(uniqueTopLevelKeys('{"model":"a","input":[],"model":"b"}')).toBe(false);
    expect(uniqueTopLevelKeys('{"model":"a","mod\\u0065l":"b"}')).toBe(false);
    expect(uniqueTopLevelKeys('{"x":"\\\\","x":1}')).toBe(false);
    expect(uniqueTopLevelKeys('{"x":"a\\"b","y":"}","z":{"x":"{"}}')).toBe(true);
  });

  test("the client's text is kept only when nothing changes", () => {
    const raw = JSON.stringify(codexBody, null, 1);
    const body = JSON.parse(raw);
    expect(payloadUnchanged(body)).toBe(true);
    expect(upstreamText(body, toUpstreamPayload(body), raw)).toBe(raw);
    expect(JSON.parse(raw)).toEqual(toUpstreamPayload(body));
    for (const change of [
      { store: true },
      { stream: false },
      { instructions: undefined },
      { temperature: 0.2 },
      { input: "hi" },
      { input: [{ role: "system", content: "be brief" }] },
      { include: [1] },
    ]) {
      const b = { ...codexBody, ...change };
      const text = JSON.stringify(b);
      const parsed = JSON.parse(text);
      expect(payloadUnchanged(parsed)).toBe(false);
      expect(upstreamText(parsed, toUpstreamPayload(parsed), text)).toBe(
        JSON.stringify(toUpstreamPayload(parsed)),
      );
    }
    const dup = `{"model":"gpt-5.2",${JSON.stringify(codexBody).slice(1)}`;
    const parsed = JSON.parse(dup);
    expect(upstreamText(parsed, toUpstreamPayload(parsed), dup)).toBe(
      JSON.stringify(toUpstreamPayload(parsed)),
    );
  });
});

describe("changed bodies keep the client's text of the members that do not change", () => {
  test("pretty-printed, escaped, odd values: the text sent parses to the payload, with its key order", () => {
    const odd = {
      model: "gpt-5.2",
      temperature: 0.5,
      'k"ey': { "{": ["}", "]", "\\"], n: [1, -2.5e3, true, false, null] },
      input: [{ role: "user", content: 'x \\" } ] { [ \u00e9' }],
      metadata: { a: "b" },
      include: ["a", 1],
      empty: {},
      list: [[], [{}]],
    };
    for (const indent of [0, 1, "\t"]) {
      for (const change of [{}, { store: true }, { instructions: 7 }, { input: "hi" }, { stream: "yes" }]) {
        const b = { ...odd, ...change };
        const raw = JSON.stringify(b, null, indent);
        const body = JSON.parse(raw);
        const payload = toUpstreamPayload(body);
        const text = upstreamText(body, payload, raw);
        expect(JSON.parse(text)).toEqual(payload);
        expect(Object.keys(JSON.parse(text))).toEqual(Object.keys(payload));
        // The unchanged long member is the client's own text (its indentation kept).
        if (indent !== 0)
          expect(text).toContain(
            raw
              .slice(raw.indexOf('"k\\"ey"'), raw.indexOf('"input"') - 1)
              .trimEnd()
              .replace(/,$/, ""),
          );
      }
    }
  });
});

describe("over HTTP", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "p1", chatgptAccountId: "chatgpt-p1" }] });
  });
  afterAll(async () => {
    await env?.stop();
  });
  const send = async (text: BodyInit) => {
    const res = await fetch(`${env.gw.url}/backend-api/codex/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text,
    });
    expect(res.status).toBe(200);
    await res.text();
    return env.upstream.calls("POST /backend-api/codex/responses").at(-1)!.body;
  };

  test("a Codex CLI body goes upstream byte for byte; one that needs changes goes as the changed copy", async () => {
    const raw = JSON.stringify(codexBody, null, 2);
    expect(await send(raw)).toBe(raw);
    const sdk = JSON.stringify({ model: "gpt-5.2", input: "hi", temperature: 0.5 });
    expect(JSON.parse(await send(sdk))).toEqual(toUpstreamPayload(JSON.parse(sdk)));
  });

  test("the body is decoded as Request.text() decodes it: a BOM dropped, UTF-8 kept, bad bytes replaced", async () => {
    const raw = JSON.stringify({ ...codexBody, prompt_cache_key: "é ✓ 😀" }, null, 2);
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(raw)]);
    expect(await send(bytes)).toBe(raw);
    // A byte that is not UTF-8 inside a string: the replacement character, as text() gives it.
    const bad = new TextEncoder().encode(raw.replace("é", "#"));
    bad[bad.indexOf(0x23)] = 0xff;
    expect(await send(bad)).toBe(await new Response(bad).text());
    expect(await send(bad)).toContain("\ufffd");
  });
});

describe("the changed text goes to fetch encoded once", () => {
  test("upstreamBody: the client's own text as it is, a built text as its UTF-8 bytes", () => {
    const raw = JSON.stringify({ ...codexBody, prompt_cache_key: "é ✓ 😀" });
    expect(upstreamBody(raw, raw)).toBe(raw);
    const body = JSON.parse(raw);
    const changed = { ...body, store: true };
    const text = upstreamText(changed, toUpstreamPayload(changed), JSON.stringify(changed));
    const sent = upstreamBody(text, JSON.stringify(changed));
    expect(sent).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(sent as Uint8Array)).toBe(text);
  });

  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
  });
  afterAll(async () => {
    await env?.stop();
  });

  test("a changed body reaches the account that answers after a failover, the same bytes each time", async () => {
    env.fake.always("chatgpt-a", { kind: "http_error", status: 503, body: { error: { message: "busy" } } });
    env.fake.always("chatgpt-b", { kind: "text", text: "from b" });
    const sdk = { model: "gpt-5.2", input: [{ role: "user", content: 'é ✓ 😀 "q"' }], temperature: 0.5 };
    const res = await fetch(`${env.gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(sdk),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("from b");
    const calls = env.upstream.calls("POST /backend-api/codex/responses");
    expect(calls.length).toBeGreaterThanOrEqual(2);
    const expected = upstreamText(sdk, toUpstreamPayload(sdk), JSON.stringify(sdk));
    for (const c of calls) expect(c.body).toBe(expected);
  });
});

describe("a changed text's bytes made from its pieces at the fetch call", () => {
  /** What `upstreamBody` hands fetch for `raw`, made as sendUpstream makes it; and the text. */
  const sent = (raw: string, minLength?: number) => {
    const read = readBody(raw, minLength);
    const payload = toUpstreamPayload(read.body);
    const parts = upstreamParts(read.body, payload, raw, read);
    const text = upstreamText(read.body, payload, raw, read);
    const body = upstreamBody(text, raw, parts);
    return {
      text,
      parts,
      atSend: typeof body === "function",
      bytes: typeof body === "function" ? body() : body,
    };
  };
  const utf8 = (s: string) => [...new TextEncoder().encode(s)];

  test("the bytes are the text's UTF-8: non-ASCII, members changed first and last, hoisted items", () => {
    // Past 8,192 characters a changed text goes through the reused buffer; below, its own encode.
    const pad = "ü😀x".repeat(3000);
    const paths = { atSend: 0, own: 0 };
    const bodies = [
      // Non-ASCII in kept members and in a serialised one; `store` first, `temperature` last.
      { store: true, model: "gpt-5.2", input: [{ role: "user", content: "é ✓ 😀 \u2028" }], temperature: 1 },
      {
        store: true,
        model: "gpt-5.2",
        input: [{ role: "user", content: `é ✓ 😀 \u2028${pad}` }],
        temperature: 1,
      },
      // A string `input` (rewritten) first, `instructions` missing (added at the end).
      { input: "grüße 😀", model: "m" },
      { input: `grüße 😀${pad}`, model: "m" },
      // The same, the long text in a kept member.
      { input: "grüße 😀", model: `m${pad}` },
      // A developer message hoisted out of a long, outlined history with non-ASCII text.
      {
        model: "m",
        input: [
          { role: "developer", content: "sei kurz ✓" },
          ...Array.from({ length: 40 }, (_, i) => ({ role: "user", content: `${i} ${"ü😀x".repeat(80)}` })),
          { role: "developer", type: "message", content: [{ type: "input_text", text: "zuletzt é" }] },
        ],
        store: false,
        stream: true,
      },
    ];
    for (const b of bodies) {
      for (const raw of [JSON.stringify(b), JSON.stringify(b, null, 2)]) {
        for (const min of [0, undefined]) {
          const { text, parts, atSend, bytes } = sent(raw, min);
          expect(parts.length).toBeGreaterThan(1);
          expect(text).not.toBe(raw);
          expect(atSend).toBe(raw.length > 8192);
          paths[atSend ? "atSend" : "own"]++;
          expect(JSON.parse(text)).toEqual(toUpstreamPayload(JSON.parse(raw)));
          expect(bytes).toBeInstanceOf(Uint8Array);
          expect([...(bytes as Uint8Array)]).toEqual(utf8(text));
        }
      }
    }
    // The short bodies' 8 cases take their own encode; the 16 padded or long ones, the buffer.
    expect(paths).toEqual({ atSend: 16, own: 8 });
  });

  test("repeated top-level keys: the payload serialised is the one piece", () => {
    const raw = `{"model":"a","input":[],"model":"b ✓"}`;
    const { text, parts, bytes } = sent(raw);
    expect(parts).toEqual([text]);
    expect(text).toBe(JSON.stringify(toUpstreamPayload(JSON.parse(raw))));
    expect([...(bytes as Uint8Array)]).toEqual(utf8(text));
  });

  test("an unchanged body is the client's own text, never encoded", () => {
    const raw = JSON.stringify(codexBody);
    const { parts, bytes } = sent(raw);
    expect(parts).toEqual([raw]);
    expect(bytes).toBe(raw);
  });

  test("an unchanged body's text is the client's string itself, also once compiled for many pieces", () => {
    // The engine's compiled `"" + raw` made a new two-piece string (a rope) of raw's length; then
    // upstreamBody's `text === raw` copied all of it to compare.
    const raw = new TextDecoder().decode(new TextEncoder().encode(`{"input":"${"x".repeat(20_000)}"}`));
    const other = ["{", raw.slice(1, 40), "}"];
    for (let i = 0; i < 100_000; i++) partsText(i % 3 === 0 ? other : [raw]);
    optimizeNextInvocation(partsText);
    partsText(other);
    expect(isRope(raw)).toBe(false);
    for (let i = 0; i < 1_000; i++) expect(isRope(partsText([raw]))).toBe(false);
    expect(partsText(other)).toBe(`{${raw.slice(1, 40)}}`);
    expect(partsText([])).toBe("");
  });

  test("each call reuses one buffer: the bytes last until the next call", () => {
    const a = encodedAtSend(["{", '"a":"é"', "}"]);
    const copy = [...a];
    expect(copy).toEqual(utf8('{"a":"é"}'));
    const b = encodedAtSend(["[", "1", "]"]);
    expect([...b]).toEqual(utf8("[1]"));
    expect(b.buffer).toBe(a.buffer);
    // Sized from the pieces themselves: a text of 2-byte characters is never cut short.
    const c = encodedAtSend(["{", '"a":"éééééééééé"', "}"]);
    expect([...c]).toEqual(utf8('{"a":"éééééééééé"}'));
  });
});

describe("a long changed body through the gateway", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "s1", chatgptAccountId: "chatgpt-s1" }] });
  });
  afterAll(async () => {
    await env?.stop();
  });

  test("reaches the upstream as its text, whatever the request before it sent", async () => {
    const long = (tag: string) => ({
      model: "gpt-5.2",
      input: [
        { role: "developer", content: `${tag} ✓` },
        ...Array.from({ length: 30 }, (_, i) => ({
          role: "user",
          content: `${tag} ${i} ${"ö😀y".repeat(200)}`,
        })),
      ],
    });
    // Two at once: each one's bytes are made at its own fetch call.
    const bodies = [long("eins"), long("zwei"), { model: "gpt-5.2", input: "kurz é" }];
    await Promise.all(
      bodies.map(async (b) => {
        const res = await fetch(`${env.gw.url}/backend-api/codex/responses`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(b),
        });
        expect(res.status).toBe(200);
        await res.text();
      }),
    );
    const got = env.upstream.calls("POST /backend-api/codex/responses").map((c) => c.body);
    for (const b of bodies) {
      const raw = JSON.stringify(b);
      expect(got).toContain(upstreamText(JSON.parse(raw), toUpstreamPayload(JSON.parse(raw)), raw));
    }
  });
});
