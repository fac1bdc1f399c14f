/**
 * The non-streamed `/v1/responses` answer (and the Chat one built from it): its collector reads the
 * JSON of the events it uses alone (the start, finished output items, the end), not of every delta,
 * and assembles the same Response object, with the same stream state, as a collector that parses
 * every event (what it did before), for random streams cut anywhere.
 */
import { describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/core/clock.ts";
import { ResponseCollector } from "../../src/proxy/shapers.ts";
import { drain, type StreamState } from "../../src/proxy/stream.ts";
import type { Json } from "../../src/proxy/validate.ts";
import { randomCuts } from "../support/cuts.ts";
import { proxyStream } from "../support/proxy-stream.ts";

const enc = new TextEncoder();
const ev = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const delta = (d: string) => ev({ type: "response.output_text.delta", delta: d });
const item = (id: string, index: number) =>
  ev({
    type: "response.output_item.done",
    output_index: index,
    item: { id, type: "message", role: "assistant", content: [{ type: "output_text", text: id }] },
  });

/** A collector that parses every event, as the collector did before it named the events it reads. */
class ParsingCollector extends ResponseCollector {
  override needsJson(): boolean {
    return true;
  }
}

async function collect(chunks: readonly Uint8Array[], collector: ResponseCollector) {
  const ps = proxyStream(chunks, collector);
  await drain(ps);
  return { result: collector.result(ps.state), state: ps.state };
}

/** Events of every kind the collector reads or skips, framed the usual and unusual ways. */
const EVENTS = [
  ev({ type: "response.created", response: { id: "r1", created_at: 1, status: "in_progress", output: [] } }),
  ev({ type: "response.in_progress", response: { id: "r0", created_at: 1 } }),
  ev({ type: "response.queued", response: { id: "rq" } }),
  ev({ type: "codex.rate_limits", rate_limits: { primary: { used_percent: 5, window_minutes: 300 } } }),
  delta("héllo 😀"),
  `data: ${JSON.stringify({ type: "response.output_text.delta", delta: "x" })}\n\n`,
  `data: ${JSON.stringify({ type: "response.output_item.done", output_index: 3, item: { id: "d" } })}\n\n`,
  'event: response.output_text.delta\ndata: {"a":\ndata: 1}\n\n',
  "event: response.output_item.done\ndata: not json\n\n",
  ": comment\n\n",
  item("m2", 2),
  item("m1", 1),
  ev({ type: "error", error: { code: "Server_Error", message: "boom" } }),
  ev({
    type: "response.completed",
    response: { id: "r1", created_at: 1, output: [], usage: { output_tokens: 2 } },
  }),
  ev({ type: "response.incomplete", response: { id: "r3", output: [] } }),
  ev({ type: "response.failed", response: { id: "r4", error: { code: "x", message: "m" } } }),
];

describe("ResponseCollector", () => {
  test("reads the JSON of the start, finished items and the end alone, not of the deltas", async () => {
    const seen: { type: string; json: boolean }[] = [];
    class Recording extends ResponseCollector {
      override event(type: string, json: Json | null, raw: string, state: StreamState): string {
        seen.push({ type, json: json !== null });
        return super.event(type, json, raw, state);
      }
    }
    const text =
      EVENTS[0]! +
      delta("a").repeat(500) +
      item("m1", 0) +
      EVENTS[13]!.replace('"output":[]', '"output":[1]');
    const got = await collect([enc.encode(text)], new Recording());
    expect(seen.filter((s) => s.json).map((s) => s.type)).toEqual([
      "response.created",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(seen.filter((s) => s.type === "response.output_text.delta" && !s.json)).toHaveLength(500);
    expect(got).toEqual(await collect([enc.encode(text)], new ParsingCollector()));
  });

  test("the same answer and state as parsing every event: random streams, randomly cut", async () => {
    const next = seededRandom(21).next;
    for (let k = 0; k < 300; k++) {
      let text = "";
      for (let i = 0, n = 1 + Math.floor(next() * 20); i < n; i++)
        text += EVENTS[Math.floor(next() * EVENTS.length)]!;
      if (k % 30 === 7) text = text.replace(/\n/g, "\r\n");
      const data = enc.encode(text);
      const chunks = randomCuts(data, next, 80);
      const scrub = (x: unknown) => JSON.stringify(x).replace(/resp_[0-9a-f]{32}/g, "resp_X");
      const got = await collect(chunks, new ResponseCollector());
      const want = await collect(chunks, new ParsingCollector());
      expect({ k, got: scrub(got) }).toEqual({ k, got: scrub(want) });
    }
  });
});
