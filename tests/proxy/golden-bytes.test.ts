/**
 * Byte for byte: every proxy endpoint answers exactly the recorded bytes for the same upstream
 * bytes, however the upstream cuts them. Complements golden-answers.test.ts (which compares text
 * cut inside JavaScript strings) with cuts at byte level: inside multi-byte UTF-8 characters, inside
 * CRLF pairs, between `event:` and `data:`; plus upstream keep-alive comments, invalid UTF-8, a last
 * event without its blank line, a stream cut inside an event, and error events first and later.
 * The fixture (`golden-bytes.json`) was recorded from main before the streaming work of issue 15.
 * It runs twice, over the gateway's own HTTP/1.1 upstream client (the default) and over Bun's
 * `fetch` (`CODEX_LB_UPSTREAM_CLIENT=fetch`): both must give the recorded bytes.
 *
 * Answers are kept as latin1 text of their bytes (one character per byte), so a changed byte shows.
 * Only what the gateway makes up per request is normalised: chat completion ids, generated
 * response ids and "now" timestamps.
 *
 * Re-record (only when a behaviour change is intended): `GOLDEN_UPDATE=1 bun test tests/proxy/golden-bytes`.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fakeCodex } from "../fakes/codex.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "golden-bytes.json");
const T = 1_700_000_000;
const enc = new TextEncoder();

const ev = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const resp = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
  id,
  object: "response",
  created_at: T,
  status,
  model: "gpt-5.2",
  output: [],
  ...extra,
});
const usage = {
  input_tokens: 11,
  input_tokens_details: { cached_tokens: 2 },
  output_tokens: 7,
  output_tokens_details: { reasoning_tokens: 1 },
  total_tokens: 18,
};
const message = (id: string, text: string) => ({
  id,
  type: "message",
  role: "assistant",
  status: "completed",
  content: [{ type: "output_text", text, annotations: [] }],
});
const delta = (d: string) =>
  ev({ type: "response.output_text.delta", item_id: "msg_b", output_index: 0, content_index: 0, delta: d });
const WORDS = ["Grüße", " 日本語", " 😀🎉", " ✓ naïve", " €"];

/** The usual answer with multi-byte text, rate limits and usage. */
function answer(id: string, opts: { keepalives?: boolean } = {}): string {
  const ka = opts.keepalives ? ": keepalive\n\n" : "";
  return [
    ev({
      type: "codex.rate_limits",
      rate_limits: { primary: { used_percent: 12, window_minutes: 300, reset_at: T + 600 } },
    }),
    ka,
    ev({ type: "response.created", response: resp(id, "in_progress") }),
    ev({ type: "response.in_progress", response: resp(id, "in_progress") }),
    ka,
    ev({
      type: "response.output_item.added",
      output_index: 0,
      item: { id: "msg_b", type: "message", role: "assistant", status: "in_progress", content: [] },
    }),
    ...WORDS.flatMap((w) => [delta(w), ka]),
    ev({ type: "response.output_item.done", output_index: 0, item: message("msg_b", WORDS.join("")) }),
    ka,
    ev({ type: "response.completed", response: resp(id, "completed", { usage }) }),
  ].join("");
}

/** Raw upstream bytes per scenario. */
const SCENARIOS: Record<string, (id: string) => Uint8Array> = {
  plain: (id) => enc.encode(answer(id)),
  keepalives: (id) => enc.encode(`:\n\n${answer(id, { keepalives: true })}: bye\n\n`),
  crlf: (id) => enc.encode(answer(id).replace(/\n/g, "\r\n")),
  "cr-only": (id) => enc.encode(answer(id).replace(/\n/g, "\r")),
  "data-only-and-fields": (id) =>
    enc.encode(
      [
        ev({ type: "response.created", response: resp(id, "in_progress") }),
        `data: ${JSON.stringify({ type: "response.output_text.delta", delta: "dâta" })}\n\n`,
        `event:response.output_text.delta\nid: 7\nretry: 10\ndata:${JSON.stringify({ type: "response.output_text.delta", delta: "nospace" })}\n\n`,
        `event: response.output_text.delta\ndata: {"type":"response.output_text.delta",\ndata: "delta":"multi"}\n\n`,
        "event: response.output_text.delta\n: a comment inside\ndata: {}\n\n",
        "\n\n\n",
        ev({ type: "response.output_item.done", output_index: 0, item: message("m1", "dâta") }),
        // The terminal event has no blank line after it.
        `event: response.completed\ndata: ${JSON.stringify({ type: "response.completed", response: resp(id, "completed", { usage }) })}`,
      ].join(""),
    ),
  "error-first": () =>
    enc.encode(
      ev({
        type: "error",
        error: { type: "invalid_request_error", code: "context_length_exceeded", message: "too long ✗" },
      }),
    ),
  "error-later": (id) =>
    enc.encode(
      [
        ev({ type: "response.created", response: resp(id, "in_progress") }),
        delta("par✓"),
        ev({ type: "error", error: { type: "server_error", code: "Server_Error", message: "kaböom" } }),
      ].join(""),
    ),
  "failed-later": (id) =>
    enc.encode(
      [
        ev({ type: "response.created", response: resp(id, "in_progress") }),
        delta("so"),
        ev({
          type: "response.failed",
          response: resp(id, "failed", {
            error: { code: "rate_limit_exceeded", message: "slow down" },
            usage,
          }),
        }),
      ].join(""),
    ),
  "truncated-between-events": (id) =>
    enc.encode([ev({ type: "response.created", response: resp(id, "in_progress") }), delta("cüt")].join("")),
  "truncated-inside-event": (id) => {
    const full = enc.encode(
      [ev({ type: "response.created", response: resp(id, "in_progress") }), delta("cüt 😀 here")].join(""),
    );
    // Ends inside the emoji of the last event's JSON.
    return full.slice(0, full.lastIndexOf(0xf0) + 2);
  },
  "invalid-utf8": (id) => {
    const head = enc.encode(
      [ev({ type: "response.created", response: resp(id, "in_progress") }), delta("okÿ")].join(""),
    );
    const bad = enc.encode(delta("XY"));
    bad[bad.indexOf(88)] = 0xff;
    bad[bad.indexOf(89)] = 0xc3; // a lead byte without its continuation
    const tail = enc.encode(ev({ type: "response.completed", response: resp(id, "completed", { usage }) }));
    return new Uint8Array([...head, ...bad, ...tail]);
  },
};

/** How the upstream cuts its bytes into chunks. */
const CUTS: Record<string, (data: Uint8Array) => Uint8Array[]> = {
  whole: (d) => [d],
  "per-event": (d) => {
    const out: Uint8Array[] = [];
    let start = 0;
    for (let i = 1; i < d.length; i++) {
      if (d[i] === 10 && d[i - 1] === 10) {
        out.push(d.slice(start, i + 1));
        start = i + 1;
      }
    }
    if (start < d.length) out.push(d.slice(start));
    return out;
  },
  bytes: (d) => {
    const sizes = [1, 2, 5, 64, 3, 17, 1, 300, 9, 1000];
    const out: Uint8Array[] = [];
    for (let i = 0, k = 0; i < d.length; k++) {
      const n = sizes[k % sizes.length]!;
      out.push(d.slice(i, i + n));
      i += n;
    }
    return out;
  },
};

const CLIENTS: Record<string, { path: string; body: Record<string, unknown> }> = {
  codex: { path: "/backend-api/codex/responses", body: { model: "gpt-5.2", input: "hi" } },
  "responses-stream": { path: "/v1/responses", body: { model: "gpt-5.2", input: "hi", stream: true } },
  "responses-json": { path: "/v1/responses", body: { model: "gpt-5.2", input: "hi" } },
  "chat-stream": {
    path: "/v1/chat/completions",
    body: {
      model: "gpt-5.2",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    },
  },
  "chat-json": {
    path: "/v1/chat/completions",
    body: { model: "gpt-5.2", messages: [{ role: "user", content: "hi" }] },
  },
};

/** Replaces what the gateway makes up per request (on the latin1 text of the bytes). */
function normalise(text: string): string {
  const now = Math.floor(Date.now() / 1000);
  return text
    .replace(/chatcmpl-[0-9a-f]{24}/g, "chatcmpl-ID")
    .replace(/"(created_at|created)":(\d{10})/g, (m, k: string, v: string) =>
      Math.abs(Number(v) - now) < 3600 ? `"${k}":"NOW"` : m,
    )
    .replace(/resp_[0-9a-f]{32}/g, "resp_GENERATED")
    .replace(/"x-request-id":"[^"]*"/g, '"x-request-id":"ID"');
}

let chunks: Uint8Array[] = [];
// The gateway's own HTTP/1.1 client (the default) and Bun's fetch give the same bytes.
for (const upstreamClient of ["auto", "fetch"]) {
  describe(`answers are byte-identical to the recorded ones (upstream client: ${upstreamClient})`, () => {
    let env: ProxyEnv;
    beforeAll(async () => {
      const fake = fakeCodex();
      const raw = () => {
        const mine = chunks;
        return new Response(
          new ReadableStream<Uint8Array>({
            async start(c) {
              for (const ch of mine) {
                c.enqueue(ch);
                await Bun.sleep(0);
              }
              c.close();
            },
          }),
          { headers: { "content-type": "text/event-stream", "openai-model": "gpt-5.2" } },
        );
      };
      env = await startProxyEnv({
        accounts: [{ id: "b1", chatgptAccountId: "chatgpt-b1" }],
        fake: { ...fake, routes: { ...fake.routes, "POST /backend-api/codex/responses": raw } },
        env: { CODEX_LB_UPSTREAM_CLIENT: upstreamClient },
      });
    });
    afterAll(async () => {
      await env?.stop();
    });

    test("every endpoint × every upstream stream × every way of cutting it", async () => {
      const got: Record<string, { status: number; contentType: string | null; bytes: string }> = {};
      for (const [scenario, make] of Object.entries(SCENARIOS)) {
        const data = make("resp_bytes");
        for (const [cut, split] of Object.entries(CUTS)) {
          for (const [client, { path, body }] of Object.entries(CLIENTS)) {
            chunks = split(data);
            const res = await fetch(`${env.gw.url}${path}`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(body),
            });
            const bytes = Buffer.from(await res.arrayBuffer()).toString("latin1");
            got[`${scenario} / ${cut} → ${client}`] = {
              status: res.status,
              contentType: res.headers.get("content-type"),
              bytes: normalise(bytes),
            };
          }
        }
      }
      if (process.env.GOLDEN_UPDATE === "1") writeFileSync(FIXTURE, `${JSON.stringify(got, null, 1)}\n`);
      const want = JSON.parse(readFileSync(FIXTURE, "utf8")) as typeof got;
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const k of Object.keys(want)) expect({ k, ...got[k] }).toEqual({ k, ...want[k]! });
      // However the upstream cut its bytes, each endpoint answers the same.
      for (const scenario of Object.keys(SCENARIOS))
        for (const client of Object.keys(CLIENTS))
          for (const cut of Object.keys(CUTS))
            expect({ scenario, client, cut, ...got[`${scenario} / ${cut} → ${client}`] }).toEqual({
              scenario,
              client,
              cut,
              ...got[`${scenario} / whole → ${client}`]!,
            });
    });
  });
}
