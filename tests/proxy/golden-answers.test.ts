/**
 * The answers of every proxy endpoint are byte-identical to the recorded ones for the same upstream
 * stream. The fixture (`golden-answers.json`) was recorded from the gateway before the hot-path
 * work of issue 15; performance changes must not change a single byte a client sees.
 *
 * The upstream streams are raw text sent in awkward chunks (split inside events and inside CRLF
 * pairs, comments, data-only events, multi-line data), so framing and parsing paths are covered.
 * Only values the gateway makes up itself are normalised: chat completion ids and "now" timestamps.
 *
 * Re-record (only when a behaviour change is intended): `GOLDEN_UPDATE=1 bun test tests/proxy/golden-answers`.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fakeCodex } from "../fakes/codex.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "golden-answers.json");
const ACC = "chatgpt-g1";
const T = 1_700_000_000;

const ev = (e: Record<string, unknown>, crlf = false) => {
  const s = `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  return crlf ? s.replace(/\n/g, "\r\n") : s;
};
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
  input_tokens: 21,
  input_tokens_details: { cached_tokens: 5 },
  output_tokens: 9,
  output_tokens_details: { reasoning_tokens: 3 },
  total_tokens: 30,
};
const item = (id: string, text: string) => ({
  id,
  type: "message",
  role: "assistant",
  status: "completed",
  content: [{ type: "output_text", text, annotations: [] }],
});

function textStream(id: string, crlf: boolean): string {
  const parts = [
    ": a comment line\n\n",
    ev(
      {
        type: "codex.rate_limits",
        rate_limits: { primary: { used_percent: 7, window_minutes: 300, reset_at: T + 3600 } },
      },
      crlf,
    ),
    ev({ type: "response.created", response: resp(id, "in_progress") }, crlf),
    ev({ type: "response.in_progress", response: resp(id, "in_progress") }, crlf),
    ev(
      {
        type: "response.output_item.added",
        output_index: 0,
        item: { id: "msg_g", type: "message", role: "assistant", status: "in_progress", content: [] },
      },
      crlf,
    ),
  ];
  const words = ["Héllo", " wörld", " — ", "naïve 😀", " end"];
  for (const w of words)
    parts.push(
      ev(
        { type: "response.output_text.delta", item_id: "msg_g", output_index: 0, content_index: 0, delta: w },
        crlf,
      ),
    );
  // A data-only event (type in the JSON) and a multi-line data event.
  parts.push(
    `data: ${JSON.stringify({ type: "response.output_text.done", item_id: "msg_g", output_index: 0, content_index: 0, text: words.join("") })}\n\n`,
  );
  parts.push(
    `event: response.content_part.done\ndata: {"type":"response.content_part.done",\ndata: "item_id":"msg_g","output_index":0,"content_index":0,"part":{"type":"output_text","text":"x"}}\n\n`,
  );
  parts.push(
    ev({ type: "response.output_item.done", output_index: 0, item: item("msg_g", words.join("")) }, crlf),
  );
  parts.push(ev({ type: "response.completed", response: resp(id, "completed", { usage }) }, crlf));
  return parts.join("");
}

function errorAfterStart(id: string): string {
  return [
    ev({ type: "response.created", response: resp(id, "in_progress") }),
    ev({ type: "response.output_text.delta", item_id: "m", output_index: 0, content_index: 0, delta: "par" }),
    ev({ type: "error", error: { type: "server_error", code: "Server_Error", message: "kaboom" } }),
  ].join("");
}

function truncated(id: string): string {
  return [
    ev({ type: "response.created", response: resp(id, "in_progress") }),
    ev({ type: "response.output_text.delta", item_id: "m", output_index: 0, content_index: 0, delta: "cut" }),
  ].join("");
}

function failedLater(id: string): string {
  return [
    ev({ type: "response.created", response: resp(id, "in_progress") }),
    ev({ type: "response.output_text.delta", item_id: "m", output_index: 0, content_index: 0, delta: "so" }),
    ev({
      type: "response.failed",
      response: resp(id, "failed", {
        error: { code: "rate_limit_exceeded", message: "slow down" },
        usage,
      }),
    }),
  ].join("");
}

function incomplete(id: string): string {
  return [
    ev({ type: "response.created", response: resp(id, "in_progress") }),
    ev({ type: "response.output_item.done", output_index: 1, item: item("m2", "second") }),
    ev({ type: "response.output_item.done", output_index: 0, item: item("m1", "first") }),
    ev({
      type: "response.incomplete",
      response: resp(id, "incomplete", { incomplete_details: { reason: "max_output_tokens" }, usage }),
    }),
  ].join("");
}

function toolCall(id: string): string {
  const call = {
    id: "fc_1",
    type: "function_call",
    status: "completed",
    call_id: "call_1",
    name: "get_weather",
    arguments: '{"city":"Paris"}',
  };
  return [
    ev({ type: "response.created", response: resp(id, "in_progress") }),
    ev({ type: "response.output_item.added", output_index: 0, item: { ...call, arguments: "" } }),
    ev({
      type: "response.function_call_arguments.delta",
      item_id: "fc_1",
      output_index: 0,
      delta: '{"city":',
    }),
    ev({
      type: "response.function_call_arguments.delta",
      item_id: "fc_1",
      output_index: 0,
      delta: '"Paris"}',
    }),
    ev({ type: "response.output_item.done", output_index: 0, item: call }),
    ev({ type: "response.completed", response: resp(id, "completed", { usage }) }),
  ].join("");
}

/** Splits text into chunks of varying size (deterministic), cutting through events and CRLFs. */
function chunked(text: string): string[] {
  const sizes = [1, 7, 64, 3, 200, 2, 31, 1000];
  const out: string[] = [];
  let i = 0;
  let k = 0;
  while (i < text.length) {
    const n = sizes[k++ % sizes.length]!;
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

const SCENARIOS: Record<string, (id: string) => string> = {
  text: (id) => textStream(id, false),
  "text-crlf": (id) => textStream(id, true),
  "error-after-start": errorAfterStart,
  truncated,
  "failed-later": failedLater,
  incomplete,
  "tool-call": toolCall,
};

const CLIENTS: Record<string, { path: string; body: Record<string, unknown> }> = {
  codex: { path: "/backend-api/codex/responses", body: { model: "gpt-5.2", input: "hi" } },
  "responses-stream": { path: "/v1/responses", body: { model: "gpt-5.2", input: "hi", stream: true } },
  "responses-json": { path: "/v1/responses", body: { model: "gpt-5.2", input: "hi" } },
  "chat-stream": {
    path: "/v1/chat/completions",
    body: { model: "gpt-5.2", messages: [{ role: "user", content: "hi" }], stream: true },
  },
  "chat-stream-usage": {
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

/** Replaces what the gateway makes up per request: chat completion ids and "now" timestamps. */
function normalise(text: string): string {
  const now = Math.floor(Date.now() / 1000);
  return text
    .replace(/chatcmpl-[0-9a-f]{24}/g, "chatcmpl-ID")
    .replace(/"(created_at|created)":(\d{10})/g, (m, k: string, v: string) =>
      Math.abs(Number(v) - now) < 3600 ? `"${k}":"NOW"` : m,
    )
    .replace(/resp_[0-9a-f]{32}/g, "resp_GENERATED");
}

let env: ProxyEnv;
let current = "text";
beforeAll(async () => {
  const fake = fakeCodex();
  const enc = new TextEncoder();
  const raw = () => {
    const chunks = chunked(SCENARIOS[current]!("resp_golden"));
    return new Response(
      new ReadableStream<Uint8Array>({
        async start(c) {
          for (const ch of chunks) {
            c.enqueue(enc.encode(ch));
            await Bun.sleep(0);
          }
          c.close();
        },
      }),
      { headers: { "content-type": "text/event-stream", "openai-model": "gpt-5.2" } },
    );
  };
  env = await startProxyEnv({
    accounts: [{ id: "g1", chatgptAccountId: ACC }],
    fake: { ...fake, routes: { ...fake.routes, "POST /backend-api/codex/responses": raw } },
  });
});
afterAll(async () => {
  await env?.stop();
});

describe("answers are byte-identical to the recorded ones", () => {
  test("every endpoint × every upstream stream", async () => {
    const got: Record<string, { status: number; contentType: string | null; body: string }> = {};
    for (const scenario of Object.keys(SCENARIOS)) {
      current = scenario;
      for (const [client, { path, body }] of Object.entries(CLIENTS)) {
        const res = await fetch(`${env.gw.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        got[`${scenario} → ${client}`] = {
          status: res.status,
          contentType: res.headers.get("content-type"),
          body: normalise(await res.text()),
        };
      }
    }
    if (process.env.GOLDEN_UPDATE === "1") writeFileSync(FIXTURE, `${JSON.stringify(got, null, 2)}\n`);
    const want = JSON.parse(readFileSync(FIXTURE, "utf8")) as typeof got;
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expect({ k, ...got[k] }).toEqual({ k, ...want[k]! });
  });
});
