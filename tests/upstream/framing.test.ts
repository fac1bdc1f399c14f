/**
 * The backend's own event framing (one `event: ` line, then one `data: ` line, nothing else) is
 * recognised twice: on bytes by the byte-mode reader (`framedLineEndBytes`, event-stream.ts) and
 * on text by the event reader (`framedLineEnd`, sse.ts). They must agree, block by block, on
 * whether a block is framed and on its event name and data: checked on many random blocks made of
 * the pieces that matter (field prefixes, line feeds, colons, spaces, multi-byte characters).
 */
import { expect, test } from "bun:test";
import { seededRandom } from "../../src/core/clock.ts";
import { framedLineEndBytes } from "../../src/upstream/event-stream.ts";
import { framedLineEnd, parseBlock } from "../../src/upstream/sse.ts";

const PIECES = [
  "event: ",
  "data: ",
  "event:",
  "data:",
  "event",
  "data",
  "\n",
  ":",
  " ",
  "x",
  "é",
  "€",
  "😀",
  "{}",
  "id: 1",
];

test("bytes and text agree on which blocks are framed, and on their event and data", () => {
  const rand = seededRandom(20261201);
  const pick = () => PIECES[Math.floor(rand.next() * PIECES.length)]!;
  let framed = 0;
  for (let n = 0; n < 20_000; n++) {
    // Half the blocks start like a framed event, so both outcomes come up often.
    let text = rand.next() < 0.5 ? `event: ${pick()}${rand.next() < 0.7 ? "\ndata: " : pick()}` : "";
    const more = Math.floor(rand.next() * 6);
    for (let i = 0; i < more; i++) text += pick();
    // A block never holds a blank line (that ends it).
    text = text.replace(/\n{2,}/g, "\n");
    const bytes = new TextEncoder().encode(text);
    const atText = framedLineEnd(text);
    const atBytes = framedLineEndBytes(bytes);
    expect({ text, framed: atBytes >= 0 }).toEqual({ text, framed: atText >= 0 });
    if (atText < 0) continue;
    framed++;
    const dec = new TextDecoder();
    const ev = parseBlock(text)!;
    expect(ev.event).toBe(text.slice(7, atText));
    expect(dec.decode(bytes.subarray(7, atBytes))).toBe(ev.event!);
    expect(dec.decode(bytes.subarray(atBytes + 7))).toBe(ev.data);
  }
  // Both outcomes were exercised many times.
  expect(framed).toBeGreaterThan(2000);
  expect(framed).toBeLessThan(18_000);
});
