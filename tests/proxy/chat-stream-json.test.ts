/**
 * The streamed Chat Completions answer: its shaper reads the JSON of the events it turns into
 * chunks alone (the start, text, refusal and tool-call deltas, items, the end), and of every event
 * until the response id is known, not of the reasoning deltas and other events it drops; on the
 * byte path the events it drops once the id is known are not even decoded (the scan skips them,
 * or the per-event check before the scan applies); and it sends the same bytes, with the same
 * stream state and quota readings, on the scan path, the per-event path and the text path, as a
 * shaper that parses every event but `codex.*` ones (what it did before), for random streams cut
 * anywhere and one stream cut at every byte.
 */
import { describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/core/clock.ts";
import { chatStreamShaper } from "../../src/proxy/chat/response.ts";
import { SCAN_MAX_BYTES } from "../../src/proxy/event-scan.ts";
import type { Shaper, StreamState } from "../../src/proxy/stream.ts";
import type { Json } from "../../src/proxy/validate.ts";
import { randomCuts } from "../support/cuts.ts";
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

/** The Chat stream shaper on the text path alone: every event decoded, none dropped as bytes. */
function textShaper(includeUsage: boolean): Shaper {
  const { drops: _, refuses: __, ...shaper } = chatStreamShaper("gpt-x", includeUsage, 1_700_000_000_000);
  return shaper;
}

/** The Chat stream shaper as it was: the JSON of every event but `codex.*` ones, on the text path. */
function parsingShaper(includeUsage: boolean): Shaper {
  return { ...textShaper(includeUsage), needsJson: (type) => !type.startsWith("codex.") };
}

/** The Chat stream shaper without its refusals: dropped events are found by the per-event check alone. */
function perEventShaper(includeUsage: boolean): Shaper {
  const { refuses: _, ...shaper } = chatStreamShaper("gpt-x", includeUsage, 1_700_000_000_000);
  return shaper;
}

async function run(chunks: readonly Uint8Array[], shaper: Shaper) {
  const quota: unknown[] = [];
  const ps = proxyStream(chunks, shaper, quota);
  const { parts, raw } = await clientParts(ps, true);
  const body = parts.map((p) => dec.decode(p)).join("");
  // Ids made up per stream: the Chat id, and the response id of a failure the gateway writes.
  const scrub = (x: string) =>
    x.replace(/chatcmpl-[0-9a-f]{24}/g, "chatcmpl-X").replace(/resp_[0-9a-f]{32}/g, "resp_X");
  // A Chat stream writes text alone (never the upstream's bytes).
  expect(raw).toBe(0);
  return { body: scrub(body), state: scrub(JSON.stringify(ps.state)), quota };
}

/** The scan path, the per-event path, the text path and the parse-everything shaper agree on `chunks`. */
async function agree(chunks: readonly Uint8Array[], usage: boolean, label: unknown): Promise<void> {
  const scanned = await run(chunks, chatStreamShaper("gpt-x", usage, 1_700_000_000_000));
  const want = await run(chunks, parsingShaper(usage));
  expect({ label, got: scanned }).toEqual({ label, got: want });
  expect({ label, got: await run(chunks, perEventShaper(usage)) }).toEqual({ label, got: want });
  expect({ label, got: await run(chunks, textShaper(usage)) }).toEqual({ label, got: want });
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
  // Dropped, of a length no read type has (the scan skips it once the id is known), with an id.
  ev({ type: "response.content_part.added", response: { id: "rp" } }),
];

describe("chatStreamShaper", () => {
  test("reads the JSON of the events it turns into chunks alone, not of reasoning deltas", async () => {
    const seen: { type: string; json: boolean }[] = [];
    // On the text path (every event decoded): what the shaper asks to parse.
    const shaper = textShaper(true);
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

  test("the same bytes and state as parsing every event, on every path: random streams, randomly cut", async () => {
    const next = seededRandom(15).next;
    for (let k = 0; k < 400; k++) {
      let stream = "";
      for (let i = 0, n = 1 + Math.floor(next() * 20); i < n; i++)
        stream += EVENTS[Math.floor(next() * EVENTS.length)]!;
      if (k % 30 === 7) stream = stream.replace(/\n/g, "\r\n");
      const data = enc.encode(stream);
      if (k % 10 === 3 && data.length > 0) data[Math.floor(next() * data.length)] = 0xff;
      await agree(randomCuts(data, next, 80, { share: 0.2, max: 2000 }), k % 2 === 0, k);
    }
  });

  test("the same bytes, state and readings on every path: one stream of every event, cut at every byte", async () => {
    const data = enc.encode(EVENTS.join(""));
    for (let cut = 0; cut <= data.length; cut++)
      await agree([data.subarray(0, cut), data.subarray(cut)], cut % 2 === 0, cut);
  });

  test("on the byte path, the events it drops once the id is known never reach it; the scan flags the rest", async () => {
    const types: string[] = [];
    const asked: string[] = [];
    const shaper = chatStreamShaper("gpt-x", false, 1_700_000_000_000);
    const recording: Shaper = {
      ...shaper,
      drops: (type) => {
        asked.push(type);
        return shaper.drops!(type);
      },
      event(type: string, json: Json | null, raw: string, state: StreamState) {
        types.push(type);
        return shaper.event(type, json, raw, state);
      },
    };
    const chunks = [
      enc.encode(EVENTS[0]! + summary("a").repeat(300)),
      enc.encode(summary("b").repeat(200) + EVENTS[3]! + text("t").repeat(5)),
      enc.encode(EVENTS[16]! + summary("c").repeat(100) + completed),
    ];
    const got = await run(chunks, recording);
    expect(got).toEqual(await run(chunks, parsingShaper(false)));
    // The start and what it turns into chunks; the rate limits (a type the gateway reads) and the
    // finished text (the length of a type the shaper reads) are flagged by the scan and go by the
    // text path, and give nothing.
    expect(types).toEqual([
      "response.created",
      "codex.rate_limits",
      ...Array(5).fill("response.output_text.delta"),
      "response.output_text.done",
      "response.completed",
    ]);
    // The per-event check asked about the first event alone (the id is not known before it), then
    // the scan applied to the rest.
    expect(asked).toEqual(["response.created"]);
    // The rate limits were read by the gateway.
    expect(got.quota).toHaveLength(1);
    expect(got.body).toContain('"delta":{"content":"t"}');
  });

  test("each chunk is the chunk object serialised whole, in its key order (random models, deltas, usage on and off)", async () => {
    const next = seededRandom(16).next;
    const models = ["gpt-x", 'a "quoted" model', "modèle 😀", "", "back\\slash\n"];
    let frames = 0;
    for (let k = 0; k < 200; k++) {
      let stream = "";
      for (let i = 0, n = 1 + Math.floor(next() * 20); i < n; i++)
        stream += EVENTS[Math.floor(next() * EVENTS.length)]!;
      const shaper = chatStreamShaper(models[k % models.length]!, k % 2 === 0, 1_700_000_000_000 + k * 1000);
      const { body } = await run([enc.encode(stream)], shaper);
      for (const block of body.split("\n\n")) {
        if (!block.startsWith("data: {") || block.startsWith('data: {"error"')) continue;
        const payload = block.slice(6);
        const o = JSON.parse(payload);
        if (o.choices.length === 0) continue; // the usage chunk, made whole
        // What the shaper used to build: the object, then JSON.stringify.
        const chunk: Record<string, unknown> = {
          id: o.id,
          object: "chat.completion.chunk",
          created: o.created,
          model: models[k % models.length],
          choices: [{ index: 0, delta: o.choices[0].delta, finish_reason: o.choices[0].finish_reason }],
        };
        if (k % 2 === 0) chunk.usage = null;
        expect(payload).toBe(JSON.stringify(chunk));
        expect(o.created).toBe(1_700_000_000 + k);
        frames++;
      }
    }
    expect(frames).toBeGreaterThan(500);
  });

  test("huge events: beside dropped ones, across chunks, and in a chunk larger than the scan takes", async () => {
    const big = text("z".repeat(200_000));
    const huge = summary("y".repeat(SCAN_MAX_BYTES + 10));
    const dropped = summary("p").repeat(300);
    for (const stream of [
      EVENTS[0]! + dropped + big + dropped + completed,
      EVENTS[0]! + dropped + huge + text("after") + dropped + completed,
      EVENTS[0]! + text("x".repeat(SCAN_MAX_BYTES + 10)) + dropped + completed,
    ]) {
      const data = enc.encode(stream);
      for (const size of [data.length, 65_536, 150_000, 4096 + 17]) {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
        await agree(chunks, true, { size, length: data.length });
      }
    }
  });
});
