/**
 * UpstreamEvents splits bytes into events without decoding them (byte mode) and hands the stream to
 * SseReader when its framing needs it: for any bytes, cut anyhow, the events are exactly the ones
 * SseReader reads from the same chunks (and, without CR, from the whole body at once).
 */
import { describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/core/clock.ts";
import { lastEventEnd, UpstreamEvents } from "../../src/upstream/event-stream.ts";
import { type SseEvent, SseReader } from "../../src/upstream/sse.ts";
import { randomCuts } from "../support/cuts.ts";

const enc = new TextEncoder();
/** Pieces random streams are made of: framing, line feeds in runs, CR, multi-byte and invalid bytes, a BOM. */
const PIECES = [
  "event: ",
  "data: ",
  "response.output_text.delta",
  "error",
  '{"a":"é😀"}',
  "\n",
  "\n\n",
  "\n\n\n",
  ": c",
  "x",
  "\r\n",
  "\r",
  "\uFEFF",
].map((s) => enc.encode(s));
const INVALID = new Uint8Array([0xff, 0xc3]);

function randomStream(next: () => number, withCr: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = 5 + Math.floor(next() * 60);
  for (let i = 0; i < n; i++) {
    let p = PIECES[Math.floor(next() * PIECES.length)]!;
    if (!withCr && p.includes(13)) p = PIECES[5]!;
    if (next() < 0.03) p = INVALID;
    parts.push(p);
  }
  return new Uint8Array(parts.flatMap((p) => [...p]));
}

const cut = (data: Uint8Array, next: () => number) => randomCuts(data, next, 12);

async function viaUpstreamEvents(chunks: readonly Uint8Array[]): Promise<SseEvent[]> {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
  const events = new UpstreamEvents(body, 60_000);
  const out: SseEvent[] = [];
  for (let batch = await events.next(); batch !== null; batch = await events.next()) out.push(...batch);
  return out;
}

function viaSseReader(chunks: readonly Uint8Array[]): SseEvent[] {
  const r = new SseReader();
  const out: SseEvent[] = [];
  for (const ch of chunks) out.push(...r.push(ch));
  return [...out, ...r.end()];
}

/** The forward scan lastEventEnd stands for. */
function forwardScan(data: Uint8Array, from: number): number {
  let pos = from;
  for (;;) {
    let nl = data.indexOf(10, pos);
    while (nl >= 0 && data[nl + 1] !== 10) nl = data.indexOf(10, nl + 1);
    if (nl < 0 || nl + 1 >= data.length) return pos;
    pos = nl + 2;
  }
}

describe("UpstreamEvents", () => {
  test("the end of the last whole event is where a forward scan for blank lines puts it", () => {
    const next = seededRandom(7).next;
    for (let k = 0; k < 2000; k++) {
      const data = randomStream(next, false);
      const from = Math.floor(next() * data.length);
      expect({ k, end: lastEventEnd(data, from) }).toEqual({ k, end: forwardScan(data, from) });
    }
  });

  for (const withCr of [false, true]) {
    test(`events are SseReader's for any bytes however cut${withCr ? ", CR line ends included" : ""}`, async () => {
      const next = seededRandom(withCr ? 11 : 5).next;
      for (let k = 0; k < 400; k++) {
        const data = randomStream(next, withCr);
        const chunks = cut(data, next);
        const events = await viaUpstreamEvents(chunks);
        expect({ k, events }).toEqual({ k, events: viaSseReader(chunks) });
        // Without CR, however the bytes are cut (SseReader reads some CR splits differently).
        if (!withCr) expect({ k, events }).toEqual({ k, events: viaSseReader([data]) });
        expect({ k, events: await viaUpstreamEvents([data]) }).toEqual({ k, events: viaSseReader([data]) });
      }
    });
  }
});
