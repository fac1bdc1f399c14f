/**
 * The streamed Chat Completions answer: its shaper reads the JSON of the events it turns into
 * chunks alone (the start, text, refusal and tool-call deltas, items, the end), and of every event
 * until the response id is known, not of the reasoning deltas and other events it drops; and it
 * sends the same bytes, with the same stream state, as a shaper that parses every event but
 * `codex.*` ones (what it did before), for random streams cut anywhere.
 */
import { describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/core/clock.ts";
import { chatStreamShaper } from "../../src/proxy/chat/response.ts";
import type { Shaper, StreamState } from "../../src/proxy/stream.ts";
import type { Json } from "../../src/proxy/validate.ts";
import { clientParts, proxyStream } from "../support/proxy-stream.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ev = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const summary = (d: string) =>
  ev({ type: "response.reasoning_summary_text.delta", item_id: "rs_1", output_index: 0, delta: d });
const text = (d: string) =>
  ev({ type: "response.output_text.delta", item_id: "m1", output_index: 1, delta: d });
const completed = ev({
  type: "response.completed",
  response: { id: "r1", output: [], usage: { input_tokens: 3, output_tokens: 2 } },
});

/** The Chat stream shaper as it was: the JSON of every event but `codex.*` ones. */
function parsingShaper(includeUsage: boolean): Shaper {
  const shaper = chatStreamShaper("gpt-x", includeUsage, 1_700_000_000_000);
  return { ...shaper, needsJson: (type) => !type.startsWith("codex.") };
}

async function run(chunks: readonly Uint8Array[], shaper: Shaper) {
  const ps = proxyStream(chunks, shaper);
  const { parts } = await clientParts(ps, true);
  const body = parts.map((p) => dec.decode(p)).join("");
  // Ids made up per stream: the Chat id, and the response id of a failure the gateway writes.
  const scrub = (x: string) =>
    x.replace(/chatcmpl-[0-9a-f]{24}/g, "chatcmpl-X").replace(/resp_[0-9a-f]{32}/g, "resp_X");
  return { body: scrub(body), state: scrub(JSON.stringify(ps.state)) };
}

/** Events of every kind the Chat shaper reads or drops, framed the usual and unusual ways. */
const EVENTS = [
  ev({ type: "response.created", response: { id: "r1", status: "in_progress", output: [] } }),
  ev({ type: "response.in_progress", response: { id: "r0" } }),
  // Dropped, but carries a response id: until one is known, its JSON counts.
  ev({ type: "response.queued", response: { id: "rq" } }),
  ev({ type: "codex.rate_limits", rate_limits: { primary: { used_percent: 5, window_minutes: 300 } } }),
  ev({ type: "codex.other", response: { id: "rc" } }),
  ev({ type: "response.output_item.added", output_index: 0, item: { id: "rs_1", type: "reasoning" } }),
  summary("thinking 😀"),
  summary("more"),
  ev({ type: "response.reasoning_summary_text.done", item_id: "rs_1", text: "thinking" }),
  ev({ type: "response.output_item.done", output_index: 0, item: { id: "rs_1", type: "reasoning" } }),
  text("héllo"),
  text("world"),
  `data: ${JSON.stringify({ type: "response.output_text.delta", delta: "x" })}\n\n`,
  `data: ${JSON.stringify({ type: "response.reasoning_text.delta", delta: "r", response: { id: "rd" } })}\n\n`,
  'event: response.output_text.delta\ndata: {"delta":\ndata: "split"}\n\n',
  "event: response.output_text.delta\ndata: not json\n\n",
  ev({ type: "response.output_text.done", item_id: "m1", text: "héllo world" }),
  ev({ type: "response.content_part.done", item_id: "m1", part: { type: "output_text", text: "x" } }),
  ev({ type: "response.refusal.delta", delta: "no" }),
  ev({
    type: "response.output_item.added",
    output_index: 2,
    item: { id: "fc_1", type: "function_call", call_id: "call_1", name: "f" },
  }),
  ev({ type: "response.function_call_arguments.delta", item_id: "fc_1", delta: '{"a":' }),
  ev({
    type: "response.output_item.done",
    output_index: 3,
    item: { id: "fc_2", type: "function_call", call_id: "call_2", name: "g", arguments: "{}" },
  }),
  ": comment\n\n",
  ev({ type: "error", error: { code: "Server_Error", message: "boom" } }),
  completed,
  ev({
    type: "response.incomplete",
    response: { id: "r3", incomplete_details: { reason: "max_output_tokens" } },
  }),
  ev({ type: "response.failed", response: { id: "r4", error: { code: "x", message: "m" } } }),
];

describe("chatStreamShaper", () => {
  test("reads the JSON of the events it turns into chunks alone, not of reasoning deltas", async () => {
    const seen: { type: string; json: boolean }[] = [];
    const shaper = chatStreamShaper("gpt-x", true, 1_700_000_000_000);
    const recording: Shaper = {
      ...shaper,
      event(type: string, json: Json | null, raw: string, state: StreamState) {
        seen.push({ type, json: json !== null });
        return shaper.event(type, json, raw, state);
      },
    };
    const stream = EVENTS[0]! + summary("s").repeat(300) + text("t").repeat(3) + EVENTS[16]! + completed;
    const got = await run([enc.encode(stream)], recording);
    expect(seen.filter((s) => s.json).map((s) => s.type)).toEqual([
      "response.created",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.completed",
    ]);
    expect(seen.filter((s) => s.type === "response.reasoning_summary_text.delta" && !s.json)).toHaveLength(
      300,
    );
    expect(got.body).toContain('"delta":{"content":"t"}');
    expect(got.body).toContain('"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}');
    expect(got).toEqual(await run([enc.encode(stream)], parsingShaper(true)));
  });

  test("the same bytes and state as parsing every event: random streams, randomly cut", async () => {
    const next = seededRandom(15).next;
    for (let k = 0; k < 300; k++) {
      let stream = "";
      for (let i = 0, n = 1 + Math.floor(next() * 20); i < n; i++)
        stream += EVENTS[Math.floor(next() * EVENTS.length)]!;
      if (k % 30 === 7) stream = stream.replace(/\n/g, "\r\n");
      const data = enc.encode(stream);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < data.length; ) {
        const n = 1 + Math.floor(next() * 80);
        chunks.push(data.slice(i, i + n));
        i += n;
      }
      const usage = k % 2 === 0;
      const got = await run(chunks, chatStreamShaper("gpt-x", usage, 1_700_000_000_000));
      const want = await run(chunks, parsingShaper(usage));
      expect({ k, got }).toEqual({ k, got: want });
    }
  });
});
