/**
 * A Responses body read from its outline (src/proxy/json-outline.ts) instead of `JSON.parse`:
 * the outline never takes a text `JSON.parse` refuses, locates the same values, and the body sent
 * upstream parses to exactly the payload the whole-parse path gives — for odd spacing, escapes,
 * repeated keys, hoisted messages and many mutated texts (seeded, so every run is the same).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { outlineObject } from "../../src/proxy/json-outline.ts";
import { OUTLINE_MIN_LENGTH, readBody, toUpstreamPayload, upstreamText } from "../../src/proxy/payload.ts";
import { parseBody } from "../../src/proxy/validate.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

const ITEM_KEYS = ["role", "type", "content"];

/** JSON.parse's verdict: the value, or undefined when it throws. */
function parsed(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
}

/** A deterministic stream of numbers in [0, 1). */
function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x80000000;
  };
}

const PIECES = ['"', "\\", "{", "}", "[", "]", ",", ":", " ", "\n", "\t", "0", "1", "-", ".", "e", "E"];
PIECES.push("+", "u", "a", "n", "t", "f", "l", "\u0001", "/", '"a":1,', '"input"', '{"role":"developer"}');

/** `text` with one to three random edits (deletions, insertions, replacements, a cut). */
function mutate(text: string, rnd: () => number): string {
  let s = text;
  const edits = 1 + Math.floor(rnd() * 3);
  for (let j = 0; j < edits; j++) {
    const p = Math.floor(rnd() * s.length);
    const op = rnd();
    const piece = PIECES[Math.floor(rnd() * PIECES.length)]!;
    if (op < 0.35) s = s.slice(0, p) + s.slice(p + 1);
    else if (op < 0.7) s = s.slice(0, p) + piece + s.slice(p);
    else if (op < 0.95) s = s.slice(0, p) + piece + s.slice(p + 1);
    else s = s.slice(0, p);
  }
  return s;
}

const codexLike = {
  model: "gpt-5.2",
  instructions: "You are Codex.",
  input: [
    { type: "message", role: "developer", content: [{ type: "input_text", text: "<permissions> é" }] },
    { type: "message", role: "user", content: [{ type: "input_text", text: 'say "hi" \\ {[ \n\t' }] },
    { type: "function_call", name: "shell", arguments: '{"cmd":["ls","-la"]}', call_id: "c1" },
    { type: "function_call_output", call_id: "c1", output: "a\nb\u0000c 😀 \ud800" },
    { type: "reasoning", summary: [], encrypted_content: "gAAAA+/==" },
    { role: "system", content: "be brief" },
    "not an object",
  ],
  tools: [{ type: "function", name: "shell", parameters: { type: "object", properties: {} }, strict: false }],
  n: [0, 1.5, -2, 123456789012, true, false, null, {}, []],
  store: false,
  stream: true,
  include: ["reasoning.encrypted_content"],
  prompt_cache_key: "k",
  temperature: 0.5,
};
const SEEDS = [
  JSON.stringify(codexLike),
  JSON.stringify(codexLike, null, 2),
  '{"model":"m","input":"hi","metadata":{"a":"b"}}',
  '{ "model" : "m" , "input" : [ { "role" : "developer" , "content" : "d" } , {} ] }',
  '{"model":"m","input":[{"role":"system","content":"s"},{"a":-0.5}],"n":[-0.05,-0.0001,-10.5,0.0]}',
];

describe("the outline", () => {
  test("takes only what JSON.parse takes, and finds the same members and items", () => {
    const rnd = seeded(15);
    let outlined = 0;
    for (let k = 0; k < 40_000; k++) {
      const text = k < SEEDS.length ? SEEDS[k]! : mutate(SEEDS[k % SEEDS.length]!, rnd);
      const o = outlineObject(text, "input", ITEM_KEYS);
      if (o === null) continue;
      outlined++;
      const p = parsed(text);
      expect(p).toBeDefined();
      const value = p!.value as Record<string, unknown>;
      expect([...o.members.keys()].sort()).toEqual(Object.keys(value).sort());
      for (const [key, m] of o.members) {
        expect(JSON.parse(`{${text.slice(m.start, m.end)}}`)).toEqual({ [key]: value[key] });
        const v = m.value;
        expect(JSON.parse(text.slice(v.start, v.end))).toEqual(value[key]);
        if (v.plain) expect(text.slice(v.start + 1, v.end - 1)).toBe(value[key] as string);
      }
      const input = value.input;
      expect(o.items !== null).toBe(Array.isArray(input));
      if (!o.items || !Array.isArray(input)) continue;
      expect(o.items.length).toBe(input.length);
      o.items.forEach((it, i) => {
        const item = input[i] as Record<string, unknown>;
        expect(JSON.parse(text.slice(it.start, it.end))).toEqual(item);
        const isObject = typeof item === "object" && item !== null && !Array.isArray(item);
        expect(it.object).toBe(isObject);
        ITEM_KEYS.forEach((name, x) => {
          const v = it.values[x]!;
          expect(v !== null).toBe(isObject && Object.hasOwn(item, name));
          if (v === null) return;
          expect(JSON.parse(text.slice(v.start, v.end))).toEqual(item[name]);
          if (v.plain) expect(text.slice(v.start + 1, v.end - 1)).toBe(item[name] as string);
        });
      });
    }
    // The mutations keep a good part of the texts valid, so both verdicts are exercised.
    expect(outlined).toBeGreaterThan(5_000);
  });

  test("declines what it cannot settle by the text alone", () => {
    const declined = [
      "",
      "[]",
      '"s"',
      '{"a":1}x',
      '{"a":1,"a":2}',
      '{"a":1,"\\u0061":2}',
      '{"input":[{"role":"user","role":"developer"}]}',
      '{"x":{"y":{"z":1,"z":2}}}',
      '{"__proto__":{"model":"m"}}',
      '{"a":-0}',
      '{"a":1e400}',
      '{"a":123456789012345678901234}',
      '{"a":"\u0001"}',
      '{"a":"\\x"}',
      '{"a":[1,]}',
      '{"a":[',
    ];
    declined.push('{"a":-0.0}', '{"a":-0.000}', '{"a":[1,-0]}');
    for (const text of declined) expect(outlineObject(text, "input", ITEM_KEYS)).toBeNull();
    // Only minus zero is: a negative number under one is outlined.
    for (const n of ["-0.5", "-0.05", "-0.0001", "-0.10", "0.0", "-10.5"]) {
      const o = outlineObject(`{"a":${n}}`, "input", ITEM_KEYS);
      expect(o).not.toBeNull();
      const v = o!.members.get("a")!.value;
      expect(`{"a":${n}}`.slice(v.start, v.end)).toBe(n);
    }
    // Keys spread over many members (past the pairwise comparison) are still checked.
    const many = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`);
    expect(outlineObject(`{${many.join(",")}}`, "input", ITEM_KEYS)).not.toBeNull();
    expect(outlineObject(`{${many.join(",")},"k7":0}`, "input", ITEM_KEYS)).toBeNull();
  });
});

describe("the body sent upstream", () => {
  /** The upstream text the whole-parse path gives (parse, change, serialise). */
  const wholeParse = (text: string) => JSON.stringify(toUpstreamPayload(parseBody(text)));

  test("parses to the whole-parse path's payload, key order included, for every text both take", () => {
    const rnd = seeded(7);
    const bodies = [
      ...SEEDS,
      JSON.stringify({ ...codexLike, input: codexLike.input.slice(0, 5) }),
      JSON.stringify({ ...codexLike, input: codexLike.input.slice(1, 5), store: true }),
      JSON.stringify({ ...codexLike, include: ["a", 1, "b"], instructions: undefined }),
      JSON.stringify({
        model: "m",
        input: [{ role: "developer", type: "message", content: [{ text: "x" }, "y"] }],
      }),
      '{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a","text":"b"}]}],"stream":false}',
      '{"model":"m","model":"n","input":[]}',
    ];
    let compared = 0;
    for (let k = 0; k < 20_000; k++) {
      const text = k < bodies.length ? bodies[k]! : mutate(bodies[k % bodies.length]!, rnd);
      const p = parsed(text);
      if (!p || typeof p.value !== "object" || p.value === null || Array.isArray(p.value)) continue;
      const read = readBody(text, 0);
      const payload = toUpstreamPayload(read.body);
      const sent = upstreamText(read.body, payload, text, read);
      expect(JSON.stringify(JSON.parse(sent))).toBe(wholeParse(text));
      compared++;
    }
    expect(compared).toBeGreaterThan(2_000);
  });

  test("a hoisted message leaves the other items as the client wrote them", () => {
    const text = JSON.stringify(codexLike, null, 1);
    const read = readBody(text, 0);
    expect(read.items).not.toBeNull();
    const sent = upstreamText(read.body, toUpstreamPayload(read.body), text, read);
    expect(JSON.stringify(JSON.parse(sent))).toBe(wholeParse(text));
    // The kept items' own text (with their indentation), not a serialised copy.
    const userItem = text.slice(text.indexOf('{\n   "type": "message",\n   "role": "user"'));
    expect(sent).toContain(userItem.slice(0, userItem.indexOf("}\n  ]") + 1));
  });

  test("a short body is parsed whole; a long one is outlined", () => {
    const short = JSON.stringify(codexLike);
    expect(short.length).toBeLessThan(OUTLINE_MIN_LENGTH);
    expect(readBody(short).items).toBeNull();
    const long = JSON.stringify({ ...codexLike, instructions: "x".repeat(OUTLINE_MIN_LENGTH) });
    const read = readBody(long);
    expect(read.items).not.toBeNull();
    expect(
      JSON.stringify(JSON.parse(upstreamText(read.body, toUpstreamPayload(read.body), long, read))),
    ).toBe(wholeParse(long));
  });

  test("a text the outline declines is read whole, as before", () => {
    const text = '{"model":"m","input":[{"role":"developer","content":"d","content":"e"}]}';
    const read = readBody(text, 0);
    expect(read.items).toBeNull();
    expect(read.body).toEqual(JSON.parse(text));
    const sent = upstreamText(read.body, toUpstreamPayload(read.body), text, read);
    expect(sent).toBe(wholeParse(text));
  });
});

describe("through the gateway", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "outline1" }] });
  });
  afterAll(async () => {
    await env.stop();
  });
  const post = (body: string) =>
    fetch(`${env.gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });

  test("kept items reach the upstream as the client wrote them, numbers included", async () => {
    const before = env.fake.requests.length;
    // Long enough to be outlined; a system message is hoisted, so `input` changes.
    const text =
      `{"model":"gpt-5.2","instructions":"${"i".repeat(OUTLINE_MIN_LENGTH)}",` +
      '"input":[{"role":"system","content":"be brief"},' +
      '{"type":"function_call_output","call_id":"c1","output":"x","n":9007199254740993,"p":1.50}]}';
    const res = await post(text);
    expect(res.status).toBe(200);
    await res.text();
    const sent = env.fake.requests[before]!;
    expect(sent.body.instructions).toBe(`${"i".repeat(OUTLINE_MIN_LENGTH)}\nbe brief`);
    expect(sent.text).toContain(
      '{"type":"function_call_output","call_id":"c1","output":"x","n":9007199254740993,"p":1.50}',
    );
    expect(sent.text).not.toContain("9007199254740992");
  });

  test("a body too deeply nested to re-serialise is a 400, and the gateway goes on", async () => {
    const before = env.fake.requests.length;
    const depth = 100_000;
    // `1e0`: the outline declines, so the body is parsed whole and its `input` serialised again.
    const text =
      '{"model":"m","input":[{"role":"system","content":"s"},' +
      `{"type":"x","e":1e0,"d":${"[".repeat(depth)}${"]".repeat(depth)}}]}`;
    const res = await post(text);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(error).toMatchObject({ type: "invalid_request_error", code: "invalid_request_error" });
    expect(String(error.message)).toContain("nested too deeply");
    expect(env.fake.requests.length).toBe(before);
    const ok = await post('{"model":"gpt-5.2","input":"hi"}');
    expect(ok.status).toBe(200);
    await ok.text();
    expect(env.fake.requests.length).toBe(before + 1);
  });
  test("the same holds for a compaction body (every route's reader is guarded)", async () => {
    const depth = 100_000;
    const text =
      '{"model":"m","input":[{"role":"system","content":"s"},' +
      `{"type":"x","e":1e0,"d":${"[".repeat(depth)}${"]".repeat(depth)}}]}`;
    const res = await fetch(`${env.gw.url}/v1/responses/compact`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text,
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(String(error.message)).toContain("nested too deeply");
  });
});
