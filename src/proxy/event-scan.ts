/**
 * The byte pass-through's framing check in bulk: one WebAssembly call (`event-scan.wat`, SIMD)
 * splits whole SSE events and finds those that are not plainly passable, so the pass-through
 * looks at those alone instead of checking every event in JavaScript (see docs/proxy.md).
 *
 * An event is plain when it is the backend's own framing (one `event: ` line with a name, one
 * `data: ` line, nothing else), its name's length is none of the lengths the caller asks to
 * look at (the types it reads or rewrites, by length: a name of another length cannot be one),
 * and its name does not start with the prefix the caller may ask to look at (`codex.`, the events
 * `/v1/responses` hides, whatever their length).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EVENT_SCAN_WASM } from "./event-scan-wasm.ts";

/** Chunks larger than this are checked event by event as before (the scan's memory stays small). */
export const SCAN_MAX_BYTES = 1 << 20;
const PAGE = 65536;

interface Scanner {
  readonly memory: WebAssembly.Memory;
  readonly scan: (
    len: number,
    out: number,
    look: bigint,
    prefix: bigint,
    pmask: bigint,
    runs: number,
  ) => number;
  bytes: Uint8Array;
  ints: Int32Array;
}

/** The scanner, or null where WebAssembly SIMD is not to be had (events are then checked one by one). */
const scanner: Scanner | null = (() => {
  try {
    const instance = new WebAssembly.Instance(
      new WebAssembly.Module(Buffer.from(EVENT_SCAN_WASM, "base64")),
      {},
    );
    const memory = instance.exports.memory as WebAssembly.Memory;
    const scan = instance.exports.scan as Scanner["scan"];
    return { memory, scan, bytes: new Uint8Array(memory.buffer), ints: new Int32Array(memory.buffer) };
  } catch {
    return null;
  }
})();

/** The scan is available here (WebAssembly with SIMD). */
export const scanAvailable = scanner !== null;

const NONE = new Int32Array(0);

/** A name prefix the scan looks at ({@link scanPrefix}): up to 8 bytes, as the module compares them. */
export interface ScanPrefix {
  /** The prefix's bytes, little-endian. */
  readonly value: bigint;
  /** 0xff for each of its bytes. */
  readonly mask: bigint;
}

/** No prefix looked at. */
export const NO_PREFIX: ScanPrefix = Object.freeze({ value: 0n, mask: 0n });

/**
 * `prefix` (1 to 8 ASCII characters, no line feed) for {@link lookStarts}: names starting with it
 * are looked at, whatever their length.
 */
export function scanPrefix(prefix: string): ScanPrefix {
  if (prefix.length < 1 || prefix.length > 8 || !/^[\x20-\x7e]+$/.test(prefix))
    throw new Error(
      `event-scan.ts: a scan prefix must be 1 to 8 printable ASCII characters, not "${prefix}"`,
    );
  let value = 0n;
  let mask = 0n;
  for (let i = 0; i < prefix.length; i++) {
    value |= BigInt(prefix.charCodeAt(i)) << BigInt(8 * i);
    mask |= 0xffn << BigInt(8 * i);
  }
  return Object.freeze({ value, mask });
}

/**
 * The starts, in order, of the events of whole events `data` (`\n\n`-ended blocks, split as a
 * forward search for `\n\n` splits them) that are not plain: framed otherwise, or named with a
 * length whose bit is set in `look` (bit 0, an empty name, is always looked at; lengths of 64 and
 * more never are), or named with `prefix` first. Null when the scan is not available or `data` is
 * larger than {@link SCAN_MAX_BYTES}: the caller checks each event itself.
 */
export function lookStarts(
  data: Uint8Array,
  look: bigint,
  prefix: ScanPrefix = NO_PREFIX,
): Int32Array | null {
  return scanOf(data, look, prefix, 0);
}

/**
 * The events {@link lookStarts} finds, as runs of events that follow one another: each run's start
 * and end (after its last event's blank line), in order, two numbers a run. Null as for
 * {@link lookStarts}.
 */
export function lookRuns(data: Uint8Array, look: bigint, prefix: ScanPrefix = NO_PREFIX): Int32Array | null {
  return scanOf(data, look, prefix, 1);
}

function scanOf(data: Uint8Array, look: bigint, prefix: ScanPrefix, runs: 0 | 1): Int32Array | null {
  const s = scanner;
  const len = data.length;
  if (s === null || len > SCAN_MAX_BYTES) return null;
  // The data, 64 readable bytes after it, then room for a start per 2 bytes (the shortest event),
  // or for a run's two per 19 bytes (a run, then a plain event, at least 17 bytes, before the next).
  const out = (len + 64 + 3) & ~3;
  const need = out + 2 * len + 8;
  if (need > s.bytes.length) {
    s.memory.grow(Math.ceil((need - s.bytes.length) / PAGE));
    s.bytes = new Uint8Array(s.memory.buffer);
    s.ints = new Int32Array(s.memory.buffer);
  }
  s.bytes.set(data, 0);
  s.bytes[len] = 0;
  const n = s.scan(len, out, look | 1n, prefix.value, prefix.mask, runs) << runs;
  if (n === 0) return NONE;
  // A copy: the memory is the next scan's (a caller may scan again while it goes through these).
  return s.ints.slice(out >> 2, (out >> 2) + n);
}
