/**
 * The byte pass-through's bulk framing scan (src/proxy/event-scan.ts, `event-scan.wat`): the
 * embedded module is the assembled source; the scan flags exactly the events the per-event check
 * would have to look at; and a Codex stream through it (the pass-everything shaper) gives the
 * client the same bytes, and the gateway the same readings, as the per-event check (kept for
 * shapers that pass by type) and as the event path, for adversarial framings cut at every byte.
 */
import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { assembleEventScan } from "../../scripts/event-scan-source.ts";
import { seededRandom } from "../../src/core/clock.ts";
import {
  lookRuns,
  lookStarts,
  SCAN_MAX_BYTES,
  scanAvailable,
  scanPrefix,
} from "../../src/proxy/event-scan.ts";
import { EVENT_SCAN_WASM } from "../../src/proxy/event-scan-wasm.ts";
import { codexShaper, responsesStreamShaper } from "../../src/proxy/shapers.ts";
import type { Shaper } from "../../src/proxy/stream.ts";
import { lastEventEnd } from "../../src/upstream/event-stream.ts";
import { randomCuts } from "../support/cuts.ts";
import { clientParts, proxyStream } from "../support/proxy-stream.ts";

const enc = new TextEncoder();
const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

/**
 * The per-event check's verdict, written out plainly: the event (a `\n\n`-split block) is the
 * backend's own framing, one `event: ` line with a name, one `data: ` line, nothing more; and its
 * name's length has no bit in `look` (lengths of 64 and more never do), and the name does not
 * start with `prefix` (when given). `runs`: the flagged events that follow one another, joined, as
 * each run's start and end (after its last blank line).
 */
function referenceLooks(
  data: Uint8Array,
  look: bigint,
  prefix = "",
): { looks: number[]; runs: number[]; events: number } {
  const text = latin1(data);
  const out: number[] = [];
  const runs: number[] = [];
  let events = 0;
  for (let pos = 0; pos < text.length; events++) {
    const end = text.indexOf("\n\n", pos);
    const block = text.slice(pos, end);
    const nl = block.indexOf("\n");
    const name = nl - 7;
    const plain =
      block.startsWith("event: ") &&
      name > 0 &&
      block.startsWith("\ndata: ", nl) &&
      block.indexOf("\n", nl + 1) < 0 &&
      !(name < 64 && ((look | 1n) >> BigInt(name)) & 1n) &&
      !(prefix !== "" && block.slice(7, nl).startsWith(prefix));
    if (!plain) {
      out.push(pos);
      if (runs.length > 0 && runs[runs.length - 1] === pos) runs[runs.length - 1] = end + 2;
      else runs.push(pos, end + 2);
    }
    pos = end + 2;
  }
  return { looks: out, runs, events };
}

/** Bytes from adversarial pieces of framing, cut to whole events as the upstream reader cuts them. */
function framingSoup(next: () => number, n: number): Uint8Array {
  const pieces = [
    "event: ",
    "\ndata: ",
    "data: ",
    "\n",
    "\n\n",
    "\n\n\n",
    "x",
    "response.output_text.delta",
    "error",
    "abcde",
    "response.created",
    "é",
    ":",
    " ",
    "event:",
    "\ndata:",
    "{}",
    "a".repeat(31),
    "a".repeat(63),
    "\r",
    // Whole events, plain unless their name's length is looked at.
    "event: response.output_text.delta\ndata: {}\n\n",
    "event: x\ndata: {}\n\n",
    "event: abcde\ndata: \n\n",
    "event: response.created\ndata: {}\n\n",
    `event: ${"é".repeat(20)}\ndata: é\n\n`,
    "codex.",
    "codex",
    "event: codex.rate_limits\ndata: {}\n\n",
    `event: codex.${"n".repeat(40)}\ndata: {}\n\n`,
    "event: codex\ndata: {}\n\n",
    "event: codexx\ndata: {}\n\n",
    "event: codex.\ndata: {}\n\n",
    "event: codex.é\ndata: {}\n\n",
    // Names of 32 to 64 bytes: told apart by length below 64.
    "event: response.function_call_arguments.delta\ndata: {}\n\n",
    "event: response.reasoning_summary_text.delta\ndata: {}\n\n",
    `event: ${"m".repeat(63)}\ndata: {}\n\n`,
    `event: ${"m".repeat(64)}\ndata: {}\n\n`,
  ];
  let s = "";
  for (let i = 0; i < n; i++) s += pieces[Math.floor(next() * pieces.length)];
  s += "\n\n";
  const bytes = enc.encode(s);
  return bytes.subarray(0, lastEventEnd(bytes));
}

describe("event scan", () => {
  test("the embedded module is event-scan.wat assembled, and it loads here (WebAssembly SIMD)", async () => {
    expect(Buffer.from(await assembleEventScan()).toString("base64")).toBe(EVENT_SCAN_WASM);
    expect(scanAvailable).toBe(true);
  });

  test("flags exactly the events the per-event check looks at (random framings, random name lengths)", () => {
    const next = seededRandom(11).next;
    let flagged = 0;
    let plain = 0;
    let joined = 0;
    for (let k = 0; k < 3000; k++) {
      const data = framingSoup(next, 1 + Math.floor(next() * 60));
      // A few names' lengths looked at, as the pass-through asks (bit 0 is always looked at).
      const look =
        (1n << BigInt(Math.floor(next() * 64))) |
        (1n << 5n) |
        (1n << 16n) |
        (next() < 0.5 ? 1n << 26n : 0n) |
        (next() < 0.5 ? 1n << 38n : 0n) |
        (next() < 0.3 ? 1n << 63n : 0n);
      const want = referenceLooks(data, look);
      const got = lookStarts(data, look);
      const runs = lookRuns(data, look);
      expect({ k, text: latin1(data), got: got && [...got], runs: runs && [...runs] }).toEqual({
        k,
        text: latin1(data),
        got: want.looks,
        runs: want.runs,
      });
      flagged += want.looks.length;
      plain += want.events - want.looks.length;
      joined += want.looks.length - want.runs.length / 2;
    }
    // The soup has both kinds in number, and runs of several flagged events (else the comparison
    // says little).
    expect(flagged).toBeGreaterThan(1000);
    expect(plain).toBeGreaterThan(300);
    expect(joined).toBeGreaterThan(300);
  });

  test("flags names with the prefix asked for, whatever their length (random framings and prefixes)", () => {
    const next = seededRandom(13).next;
    const prefixes = ["codex.", "codex", "codex.ra", "c", "n", "re"];
    let byPrefix = 0;
    for (let k = 0; k < 3000; k++) {
      const data = framingSoup(next, 1 + Math.floor(next() * 60));
      const look = (1n << 5n) | (1n << 16n) | (next() < 0.5 ? 1n << 25n : 0n);
      const prefix = prefixes[Math.floor(next() * prefixes.length)]!;
      const want = referenceLooks(data, look, prefix);
      const got = lookStarts(data, look, scanPrefix(prefix));
      const runs = lookRuns(data, look, scanPrefix(prefix));
      expect({ k, prefix, text: latin1(data), got: got && [...got], runs: runs && [...runs] }).toEqual({
        k,
        prefix,
        text: latin1(data),
        got: want.looks,
        runs: want.runs,
      });
      byPrefix += want.looks.length - referenceLooks(data, look).looks.length;
    }
    // Many events are flagged for their prefix alone (else the comparison says little).
    expect(byPrefix).toBeGreaterThan(1000);
    expect(() => scanPrefix("")).toThrow();
    expect(() => scanPrefix("123456789")).toThrow();
    expect(() => scanPrefix("a\nb")).toThrow();
  });

  test("a whole answer of plain events flags none; events the gateway reads are flagged", () => {
    const ev = (type: string) => `event: ${type}\ndata: {"type":"${type}"}\n\n`;
    const deltas = ev("response.output_text.delta").repeat(1000);
    const data = enc.encode(ev("response.created") + deltas + ev("response.completed"));
    const look = (1n << 16n) | (1n << 18n);
    expect([...lookStarts(data, look)!]).toEqual([0, data.length - ev("response.completed").length]);
    expect([...lookStarts(enc.encode(deltas), look)!]).toEqual([]);
    // As runs: the start alone, then the end alone; side by side, one run.
    const start = ev("response.created").length;
    expect([...lookRuns(data, look)!]).toEqual([
      0,
      start,
      data.length - ev("response.completed").length,
      data.length,
    ]);
    const both = enc.encode(ev("response.created") + ev("response.completed") + deltas);
    expect([...lookRuns(both, look)!]).toEqual([0, start + ev("response.completed").length]);
    expect([...lookRuns(enc.encode(deltas), look)!]).toEqual([]);
    // Larger than the scan takes: the caller checks each event itself.
    expect(lookStarts(enc.encode(ev("x").repeat(Math.ceil(SCAN_MAX_BYTES / 20))), look)).toBeNull();
  });
});

/** A Codex shaper that passes by type: the same answers, through the per-event check. */
const perEventShaper: Shaper = {
  needsJson: codexShaper.needsJson,
  event: codexShaper.event,
  end: codexShaper.end,
  passes: () => true,
};

async function run(chunks: readonly Uint8Array[], shaper: Shaper, bytes: boolean) {
  const quota: unknown[] = [];
  const ps = proxyStream(chunks, shaper, quota);
  const { parts } = await clientParts(ps, bytes);
  // Byte for byte, but for the id a response.failed makes up when the upstream gave none.
  const scrub = (s: string) => s.replace(/resp_[0-9a-f]{32}/g, "resp_X");
  return { body: scrub(latin1(Buffer.concat(parts))), state: scrub(JSON.stringify(ps.state)), quota };
}

/**
 * The `/v1/responses` stream shaper without its refusals: the same answers, through the per-event
 * check alone (as before the scan served it).
 */
function perEventResponsesShaper(): Shaper {
  const { refuses: _, ...shaper } = responsesStreamShaper();
  return shaper;
}

/**
 * The scan path, the per-event check and the event path agree on `chunks`: for the Codex shaper
 * (passes everything) and for the `/v1/responses` one (passes by type, refusals for the scan).
 */
async function agree(chunks: readonly Uint8Array[], label: unknown): Promise<void> {
  const scanned = await run(chunks, codexShaper, true);
  const perEvent = await run(chunks, perEventShaper, true);
  const viaEvents = await run(chunks, codexShaper, false);
  expect({ label, ...scanned }).toEqual({ label, ...perEvent });
  expect({ label, ...scanned }).toEqual({ label, ...viaEvents });
  const responses = await run(chunks, responsesStreamShaper(), true);
  const responsesPerEvent = await run(chunks, perEventResponsesShaper(), true);
  const responsesViaEvents = await run(chunks, responsesStreamShaper(), false);
  expect({ label, responses }).toEqual({ label, responses: responsesPerEvent });
  expect({ label, responses }).toEqual({ label, responses: responsesViaEvents });
}

const ev = (type: string, json: Record<string, unknown>) =>
  `event: ${type}\ndata: ${JSON.stringify(json)}\n\n`;
const delta = (d: string) =>
  ev("response.output_text.delta", { type: "response.output_text.delta", delta: d });
const created = (id: string) => ev("response.created", { type: "response.created", response: { id } });
const completed = (id: string) =>
  ev("response.completed", {
    type: "response.completed",
    response: { id, usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 } },
  });

/** Events framed every way the scan must tell apart, with every type the gateway reads or rewrites. */
const ADVERSARIAL = [
  created("r1"),
  ev("codex.rate_limits", {
    type: "codex.rate_limits",
    rate_limits: { primary: { used_percent: 5, window_minutes: 300 } },
  }),
  delta("héllo 😀"),
  ": comment\n\n",
  "event: response.output_text.delta\n: inline comment\ndata: {}\n\n",
  "event: response.output_text.delta\ndata: {}\ndata: {}\n\n",
  "event: response.output_text.delta\nid: 7\ndata: {}\n\n",
  "event: response.output_text.delta\ndata: \n\n", // empty data
  "event: response.output_text.delta\ndata:\n\n",
  "event:response.output_text.delta\ndata: {}\n\n",
  "event: response.output_text.delta\n\n", // no data line
  "event: response.output_text.delta\nevent: error\n\n", // two lines, the second no data line
  "event: \ndata: {}\n\n", // empty name
  "event: réponse.délta\ndata: {}\n\n", // non-ASCII name
  "event: response.queued\ndata: {}\n\n", // a known name's length, another name
  "event: abcde\ndata: {}\n\n", // REWRITTEN's length
  `event: ${"n".repeat(31)}\ndata: {}\n\n`,
  `event: ${"n".repeat(32)}\ndata: {}\n\n`,
  "\n", // an odd line feed: the next event starts with it
  "\n\n",
  "data: {}\n\n",
  "retry: 5\n\n",
  ev("error", { type: "error", error: { code: "Server_Error", message: "boom" } }),
  ev("response.failed", {
    type: "response.failed",
    response: { id: "r1", error: { code: "x", message: "m" } },
  }),
  ev("response.incomplete", { type: "response.incomplete", response: { id: "r1" } }),
  // What `/v1/responses` reads (a finished item) or hides (any codex.* event, of any length).
  ev("response.output_item.done", {
    type: "response.output_item.done",
    output_index: 0,
    item: { id: "m1", type: "message", content: [] },
  }),
  ev(`codex.${"x".repeat(40)}`, { type: `codex.${"x".repeat(40)}` }),
  ev("codex.other", { type: "codex.other" }),
  "event: codex.é\ndata: {}\n\n",
  "event: codex\ndata: {}\n\n",
  delta("after"),
  completed("r1"),
  // The last `event:` line names the event: here one the gateway reads (its usage is the last).
  `event: response.output_text.delta\ndata: ${JSON.stringify({ type: "response.completed", response: { id: "r0", usage: { output_tokens: 9 } } })}\nevent: response.completed\n\n`,
];

describe("the scan path gives the per-event check's bytes and readings", () => {
  test("adversarial framings, cut in two at every byte offset", async () => {
    const data = enc.encode(ADVERSARIAL.join(""));
    for (let cut = 0; cut <= data.length; cut++) {
      await agree([data.subarray(0, cut), data.subarray(cut)], cut);
    }
  });

  test("random adversarial streams, randomly cut; CR line ends; invalid UTF-8", async () => {
    const next = seededRandom(12).next;
    for (let k = 0; k < 400; k++) {
      const parts: string[] = [];
      for (let i = 0, n = Math.floor(next() * 30); i < n; i++)
        parts.push(ADVERSARIAL[Math.floor(next() * ADVERSARIAL.length)]!);
      let text = parts.join("");
      if (k % 50 === 7) text = text.replace(/\n/g, "\r\n");
      const data = enc.encode(text);
      if (k % 10 === 3 && data.length > 0) data[Math.floor(next() * data.length)] = 0xff;
      const chunks = randomCuts(data, next, 60, { share: 0.2, max: 2000 });
      await agree(chunks, k);
    }
  });

  test("a /v1/responses stream, once started, asks its shaper about the events the scan flags alone", async () => {
    const shaper = responsesStreamShaper();
    let asked = 0;
    const counting: Shaper = {
      ...shaper,
      passes: (type) => {
        asked++;
        return shaper.passes!(type);
      },
    };
    const item = ev("response.output_item.done", {
      type: "response.output_item.done",
      output_index: 0,
      item: { id: "m1", type: "message", content: [] },
    });
    const chunks = [
      enc.encode(created("r4") + delta("a").repeat(300)),
      enc.encode(delta("b").repeat(500)),
      enc.encode(delta("c").repeat(200) + item),
      enc.encode(ev("codex.rate_limits", { type: "codex.rate_limits" }) + completed("r4")),
    ];
    const scanned = await run(chunks, counting, true);
    // Its first event is checked alone (the shaper starts there), the rest of that chunk is
    // scanned; of the other chunks only the finished item, the rate limits and the end are looked at.
    expect(asked).toBeLessThanOrEqual(1 + 3);
    expect(scanned).toEqual(await run(chunks, perEventResponsesShaper(), true));
    expect(scanned.body).not.toContain("codex.rate_limits");
    expect(scanned.body.split("response.output_text.delta").length - 1).toBe(2 * 1000);
  });

  test("huge events: beside plain ones, across chunks, and in a chunk larger than the scan takes", async () => {
    const big = delta("z".repeat(200_000));
    const huge = delta("y".repeat(SCAN_MAX_BYTES + 10));
    const plain = delta("p").repeat(300);
    for (const text of [
      created("r2") + plain + big + plain + completed("r2"),
      created("r3") + plain + huge + plain + completed("r3"),
      plain + huge,
    ]) {
      const data = enc.encode(text);
      for (const size of [data.length, 65_536, 150_000, 4096 + 17]) {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
        await agree(chunks, { size, length: data.length });
      }
    }
  });
});
