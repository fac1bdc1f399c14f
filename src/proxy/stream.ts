/**
 * Pass-through of an open upstream stream: each upstream chunk is split into events as it arrives,
 * observed (usage, response id, errors, live quota), shaped for the client's endpoint, and sent on
 * at once. Upstream `error` events become `response.failed`; a stream that ends without a terminal
 * event, or goes silent past the idle timeout, ends with a synthetic `response.failed`.
 *
 * @module
 */
import { isUtf8 } from "node:buffer";
import { type Clock, systemClock, type TimerHandle } from "../core/clock.ts";
import { transportMessage } from "../core/failures.ts";
import type { EpochMs } from "../core/types.ts";
import { type PushSink, pushStream } from "../runtime/bun/push-stream.ts";
import {
  blockEvents,
  DATA_LINE,
  decodeMidStream,
  EVENT_LINE,
  type EventBytes,
  StreamIdleTimeout,
} from "../upstream/event-stream.ts";
import { eventJson, formatEvent, jsonObject, parseBlock, type SseEvent } from "../upstream/sse.ts";
import { type OpenStream, typeOf } from "./attempt.ts";
import type { ProxyContext } from "./context.ts";
import { lookRuns, lookStarts, NO_PREFIX, type ScanPrefix, scanPrefix } from "./event-scan.ts";
import { eventError } from "./failure.ts";
import { quotaFromEvent } from "./live-quota.ts";
import { isObject, type Json } from "./validate.ts";

export interface Usage {
  readonly inputTokens: number | null;
  readonly cachedInputTokens: number | null;
  readonly outputTokens: number | null;
  readonly reasoningTokens: number | null;
  readonly totalTokens: number | null;
}

export interface StreamState {
  responseId: string | null;
  usage: Usage | null;
  terminal: "completed" | "incomplete" | "failed" | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** Turns upstream events into what one endpoint's client expects. */
export interface Shaper {
  /** True when `event` needs the parsed JSON of events of this type. */
  needsJson(type: string): boolean;
  /** Text to send for one event ("" drops it). */
  event(type: string, json: Json | null, raw: string, state: StreamState): string;
  /** Text to send once the stream is over (after its terminal event). */
  end(state: StreamState): string;
  /**
   * True when `event` returns `raw` for every type, reading nothing of it: events may then go to
   * the client as the upstream's own bytes, without calling it (see ProxyStream.stepBytes).
   */
  readonly passThrough?: boolean;
  /**
   * Instead of {@link passThrough}: true when `event` would return `raw` for an event of this type
   * now, reading nothing of it (no JSON, no change of the shaper's state), so it may go to the
   * client as the upstream's own bytes.
   */
  passes?(type: string): boolean;
  /**
   * Instead of {@link passes}, for a shaper that writes its own text (never the upstream's bytes):
   * true when `event` would return "" for an event of this type now, reading nothing of it (no
   * JSON, no change of the shaper's state), so it need not be decoded at all. The other events
   * take the text path, in order, and their text goes out as {@link ProxyStream.step} gives it.
   */
  drops?(type: string): boolean;
  /**
   * With {@link passes} or {@link drops}, for the bulk scan ({@link lookStarts}): null while that
   * check may still change its answers (each event is then checked one by one); else the only
   * types it refuses from now on, for good: these `names` and any type starting with `prefix`.
   * Every other event of the backend's own framing then goes on as bytes (or, with `drops`, is
   * left out) without a check of its own.
   */
  refuses?(): ShaperRefusals | null;
}

/** What a shaper's {@link Shaper.passes} refuses for good (see {@link Shaper.refuses}). */
export interface ShaperRefusals {
  readonly names: readonly string[];
  readonly prefix: string | null;
}

/** Types whose JSON the observer itself reads. */
const OBSERVED = new Set([
  "response.created",
  "response.completed",
  "response.incomplete",
  "response.failed",
  "codex.rate_limits",
]);

/**
 * The one type the gateway rewrites: an upstream `error` event goes to the client as a
 * `response.failed` built from its JSON (in `#shape`), so it never passes on as bytes.
 */
const REWRITTEN = "error";

const n = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** Usage of a Response object (`response.usage`). */
export function usageOf(response: unknown): Usage | null {
  if (!isObject(response) || !isObject(response.usage)) return null;
  const u = response.usage;
  const inDet = isObject(u.input_tokens_details) ? u.input_tokens_details : {};
  const outDet = isObject(u.output_tokens_details) ? u.output_tokens_details : {};
  return {
    inputTokens: n(u.input_tokens),
    cachedInputTokens: n(inDet.cached_tokens),
    outputTokens: n(u.output_tokens),
    reasoningTokens: n(outDet.reasoning_tokens),
    totalTokens: n(u.total_tokens),
  };
}

/** A `response.failed` event carrying `error`. */
export function failedEvent(
  error: { code: string; message: string; type?: string } & Json,
  responseId: string | null,
  now: EpochMs,
): Json {
  return {
    type: "response.failed",
    response: {
      id: responseId ?? `resp_${crypto.randomUUID().replace(/-/g, "")}`,
      object: "response",
      created_at: Math.floor(now / 1000),
      status: "failed",
      error: { type: "server_error", ...error },
      incomplete_details: null,
      output: [],
    },
  };
}

export type FinishStatus = "success" | "error" | "cancelled";

/** The client bytes of the next upstream chunk ("" or none: nothing to send yet), or null when done. */
export type StepBytes = string | Uint8Array | Uint8Array[] | null;

const encoder = new TextEncoder();

/**
 * The types the byte path recognises by name ({@link OBSERVED} and {@link REWRITTEN}), by the
 * length of their name, with the name as bytes. One name per length: checked here at load.
 */
const NAMED_BY_LENGTH: ({ readonly type: string; readonly bytes: Uint8Array } | undefined)[] = [];
for (const type of [...OBSERVED, REWRITTEN]) {
  const other = NAMED_BY_LENGTH[type.length];
  if (other) throw new Error(`stream.ts: event types "${other.type}" and "${type}" have the same length`);
  NAMED_BY_LENGTH[type.length] = { type, bytes: encoder.encode(type) };
}

/** The bulk scan ({@link lookStarts}) tells names apart by length below this. */
const SCAN_LENGTHS = 64;

/**
 * The lengths of those names, one bit each, for the bulk scan ({@link lookStarts}): an event named
 * with another length is none of them. Each is below {@link SCAN_LENGTHS}: checked here at load.
 */
const NAMED_LENGTHS = NAMED_BY_LENGTH.reduce((bits, named, length) => {
  if (named && length >= SCAN_LENGTHS)
    throw new Error(`stream.ts: event type "${named.type}" is ${SCAN_LENGTHS} or more long`);
  return named ? bits | (1n << BigInt(length)) : bits;
}, 0n);

const LF = 10;

/** What the bulk scan looks at for a shaper's refusals (see {@link scanLooks}). */
interface ScanLooks {
  readonly lengths: bigint;
  readonly prefix: ScanPrefix;
}

/** The scan's looks for a shaper that passes every type: the types the gateway reads or rewrites. */
const PASS_ALL_LOOKS: ScanLooks = { lengths: NAMED_LENGTHS, prefix: NO_PREFIX };

/** {@link scanLooks} of each refusals object a shaper handed out (shapers hand out constants). */
const looksOfRefusals = new WeakMap<ShaperRefusals, ScanLooks | null>();

/**
 * The scan's looks for `refusals`: the lengths of {@link NAMED_LENGTHS} and of the refused names,
 * and the refused prefix; null when the scan cannot flag them all (a name of
 * {@link SCAN_LENGTHS} or more bytes).
 */
function scanLooks(refusals: ShaperRefusals): ScanLooks | null {
  let looks = looksOfRefusals.get(refusals);
  if (looks === undefined) {
    looks = makeScanLooks(refusals);
    looksOfRefusals.set(refusals, looks);
  }
  return looks;
}

function makeScanLooks(refusals: ShaperRefusals): ScanLooks | null {
  let lengths = NAMED_LENGTHS;
  for (const name of refusals.names) {
    const length = encoder.encode(name).length;
    if (length >= SCAN_LENGTHS) return null;
    lengths |= 1n << BigInt(length);
  }
  return { lengths, prefix: refusals.prefix === null ? NO_PREFIX : scanPrefix(refusals.prefix) };
}

/** The {@link OBSERVED} or {@link REWRITTEN} type named by `data[from..to]`, or null. */
function knownName(data: Uint8Array, from: number, to: number): string | null {
  const observed = NAMED_BY_LENGTH[to - from];
  if (!observed) return null;
  const name = observed.bytes;
  for (let i = 0; i < name.length; i++) if (data[from + i] !== name[i]) return null;
  return observed.type;
}

/** `data[from..to]` as text when it is all ASCII (its own text), else null. */
function asciiName(data: Uint8Array, from: number, to: number): string | null {
  let type = "";
  for (let i = from; i < to; i++) {
    const b = data[i]!;
    if (b >= 0x80) return null;
    type += String.fromCharCode(b);
  }
  return type;
}

/**
 * The byte path reads an event's framing 4 bytes at a time, as little-endian 32-bit words of a
 * DataView (one load each once compiled): over a 1,000-event answer, byte loops over each event's
 * `event: ` line, name and `data: ` start cost about as much as the native search of its data line.
 */
const wordAt = (bytes: Uint8Array, at: number): number =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(at, true);
/** A 7-byte line start as two overlapping words (bytes 0–3 and 3–6), for {@link isLine}. */
function lineWords(start: Uint8Array): readonly [number, number] {
  if (start.length !== 7) throw new Error("stream.ts: a line start of other than 7 bytes");
  return [wordAt(start, 0), wordAt(start, 3)];
}
/** An event's first line starts so (the backend's own framing)... */
const EVENT_LINE_WORDS = lineWords(EVENT_LINE);
/** ...and its second line, from the first line's line feed. */
const DATA_LINE_WORDS = lineWords(new Uint8Array([LF, ...DATA_LINE]));
/** Four line feeds: a word XORed with it has a zero byte where it had a line feed. */
const LF_WORD = 0x0a0a0a0a;

/** The 7 bytes of `words` at `at` are `line` ({@link lineWords}); false past the end. */
function isLine(words: DataView, at: number, line: readonly [number, number]): boolean {
  return (
    at + 7 <= words.byteLength &&
    words.getInt32(at, true) === line[0] &&
    words.getInt32(at + 3, true) === line[1]
  );
}

/** The first line feed from `from` in whole events `data` (there is one), 4 bytes at a time. */
function lineEnd(data: Uint8Array, words: DataView, from: number): number {
  let i = from;
  const last = words.byteLength - 4;
  while (i <= last) {
    const v = words.getInt32(i, true) ^ LF_WORD;
    // Some byte of `v` is zero (the classic test: exact for "any", not for which).
    if (((v - 0x01010101) & ~v & 0x80808080) !== 0) break;
    i += 4;
  }
  while (data[i] !== LF) i++;
  return i;
}

/** Bytes as the text path would send them: the same bytes unless they are not valid UTF-8. */
function verbatim(bytes: Uint8Array): Uint8Array {
  return isUtf8(bytes) ? bytes : encoder.encode(decodeMidStream(bytes));
}

export class ProxyStream {
  readonly state: StreamState = {
    responseId: null,
    usage: null,
    terminal: null,
    errorCode: null,
    errorMessage: null,
  };
  #prelude: SseEvent[] | null;
  /**
   * The shaper's per-type check for the byte path (none: it passes every type): its
   * {@link Shaper.passes}, or its {@link Shaper.drops} when {@link #drops}.
   */
  readonly #passes: ((type: string) => boolean) | undefined;
  /** The shaper drops by type ({@link Shaper.drops}): the byte path sends its text alone. */
  readonly #drops: boolean;
  /** The byte path applies: the shaper passes events on as bytes and the events can read bytes. */
  readonly #bytePath: boolean;
  /** The refusals {@link #looks} was made from (a shaper hands out the same object while they hold). */
  #refusals: ShaperRefusals | null = null;
  /** What the bulk scan looks at, for a shaper that passes by type; null: each event is checked. */
  #looks: ScanLooks | null = null;
  #ended = false;
  #finished = false;
  /** The upstream body ended by itself (nothing to abort). */
  #upstreamDone = false;
  /** What `onFinish` returned: the client's end of the answer waits for it (see {@link settled}). */
  #settling: Promise<unknown> | undefined = undefined;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly open: OpenStream,
    private readonly shaper: Shaper,
    /**
     * Called once when the stream is over; a promise it returns (the request's settle, committed)
     * is what the client's end of the answer waits for ({@link settled}).
     */
    private readonly onFinish: (state: StreamState, status: FinishStatus) => unknown,
  ) {
    const passes = shaper.passThrough ? undefined : shaper.passes?.bind(shaper);
    const drops = shaper.passThrough || passes ? undefined : shaper.drops?.bind(shaper);
    this.#passes = passes ?? drops;
    this.#drops = drops !== undefined;
    // On the byte path the events the attempt read go out with the rest of their chunk, as bytes.
    this.#bytePath = Boolean((shaper.passThrough || this.#passes) && open.events.nextBytes);
    const replayed = this.#bytePath && open.events.replay?.();
    this.#prelude = replayed ? null : [...open.prelude];
  }

  /** The client text for the next upstream chunk ("" when nothing to send yet), or null when done. */
  async step(): Promise<string | null> {
    if (this.#ended) return this.#over();
    if (this.#prelude) {
      const batch = this.#prelude;
      this.#prelude = null;
      return this.#shape(batch);
    }
    let batch: SseEvent[] | null;
    try {
      batch = await this.open.events.next();
    } catch (e) {
      if (this.#finished) return null;
      return this.#broken(e);
    }
    if (batch === null) {
      // The body ended by itself: nothing to cancel, and the connection can go back to the pool.
      this.#upstreamDone = true;
      return this.#close("stream_incomplete", "Upstream stream ended before a terminal event");
    }
    return this.#shape(batch);
  }

  /**
   * Like {@link step}, for a pass-through shaper: the client bytes of the next upstream chunk.
   * Events go out as the upstream's own bytes: those the gateway does not read unparsed, the few
   * it reads (ids, usage, the end, rate limits) parsed from their `data:` line on the way. The
   * {@link REWRITTEN} type and anything framed unusually (comments, data-only events, CR line ends)
   * take the text path, so the client receives exactly what {@link step} would have produced.
   */
  async stepBytes(): Promise<StepBytes> {
    const events = this.open.events;
    if (!this.#bytePath || this.#ended || this.#prelude || !events.nextBytes) return this.step();
    let x: EventBytes | SseEvent[] | null;
    try {
      x = await events.nextBytes();
    } catch (e) {
      if (this.#finished) return null;
      return this.#broken(e);
    }
    return this.#bytesOut(x);
  }

  /**
   * What {@link stepBytes} would give when it is at hand without waiting (the upstream's next bytes,
   * or its end, read already), else undefined: the client then gets it in the same write.
   */
  stepBytesNow(): StepBytes | undefined {
    // Ended (after its last bytes, or aborted): over at once, as step() is, with no wait.
    if (this.#ended) return this.#over();
    const events = this.open.events;
    if (!this.#bytePath || this.#prelude || !events.nextBytesNow) return undefined;
    let x: EventBytes | SseEvent[] | null | undefined;
    try {
      x = events.nextBytesNow();
    } catch (e) {
      if (this.#finished) return null;
      return this.#broken(e);
    }
    return x === undefined ? undefined : this.#bytesOut(x);
  }

  /** The client bytes of what the upstream sent next (`x`, see stepBytes). */
  #bytesOut(x: EventBytes | SseEvent[] | null): StepBytes {
    if (x === null) {
      // The body ended by itself: nothing to cancel, and the connection can go back to the pool.
      this.#upstreamDone = true;
      const last = this.#close("stream_incomplete", "Upstream stream ended before a terminal event");
      // Nothing more to send (it ended after its terminal event): over now, not at the next call.
      return last === "" ? this.#over() : last;
    }
    if (Array.isArray(x)) return this.#shape(x);
    if (this.#drops) return (x.head === null ? "" : this.#dropOn(x.head)) + this.#dropOn(x.body);
    if (x.head === null) {
      const parts = this.#passOn(x.body, null);
      if (parts === null) return verbatim(x.body);
      return parts.length === 0 ? "" : parts;
    }
    const parts = this.#passOn(x.head, []) ?? [verbatim(x.head)];
    if (x.body.length > 0) this.#passOn(x.body, parts) ?? parts.push(verbatim(x.body));
    return parts.length === 0 ? "" : parts;
  }

  /**
   * Where the event at `start` of whole events `data` ends (the first line feed of its blank line)
   * when it goes to the client as the upstream's own bytes: the backend's own framing (one `event:`
   * line with a name, one `data:` line), not the {@link REWRITTEN} type, and a type the
   * shaper passes on unchanged (or, with {@link #drops}, drops). A type the gateway reads (id, usage, the end, rate limits) is
   * observed on the way from its `data:` line alone, as the text path would. -1 for any other
   * event: it takes the text path.
   */
  #passable(data: Uint8Array, words: DataView, start: number): number {
    if (!isLine(words, start, EVENT_LINE_WORDS)) return -1;
    const nameStart = start + 7;
    const nl = lineEnd(data, words, nameStart);
    if (nl === nameStart || !isLine(words, nl, DATA_LINE_WORDS)) return -1;
    const dataStart = nl + 7;
    const end = data.indexOf(LF, dataStart);
    if (data[end + 1] !== LF) return -1; // more lines than two
    const observed = knownName(data, nameStart, nl);
    if (observed === REWRITTEN) return -1;
    if (this.#passes) {
      // The shaper decides by type: an ASCII name is its own text (anything else takes the text path).
      const type = observed ?? asciiName(data, nameStart, nl);
      if (type === null || !this.#passes(type)) return -1;
    }
    if (observed !== null) {
      const json = jsonObject(decodeMidStream(data.subarray(dataStart, end)));
      if (json) this.#observe(observed, json);
    }
    return end;
  }

  /**
   * The client bytes of whole events `data`, appended to `parts`; null (nothing appended) when all
   * of them go on as they came, the common case. With a shaper that passes every type, or one
   * that says which types it refuses for good ({@link Shaper.refuses}), one bulk scan
   * ({@link lookStarts}) finds the events to look at: every other one is the backend's own framing
   * with a name the gateway neither reads nor rewrites and the shaper passes, which
   * {@link #passable} would pass without reading anything of it.
   */
  #passOn(data: Uint8Array, parts: Uint8Array[] | null): Uint8Array[] | null {
    const scan = this.#passes === undefined ? PASS_ALL_LOOKS : this.#scanLooks();
    const looks = scan === null ? null : lookStarts(data, scan.lengths, scan.prefix);
    if (looks !== null) return this.#passOnLooks(data, parts, looks);
    // Checked event by event. A shaper that comes to pass by type for good on the way (at its first
    // event, which the text path gives it) has the rest of the chunk scanned.
    let rescan = scan === null && this.#passes !== undefined;
    let out: Uint8Array[] | null = null;
    let runStart = 0;
    let pos = 0;
    const words = new DataView(data.buffer, data.byteOffset, data.byteLength);
    while (pos < data.length) {
      const end = this.#passable(data, words, pos);
      if (end >= 0) {
        pos = end + 2;
        continue;
      }
      out ??= parts ?? [];
      if (pos > runStart) out.push(verbatim(data.subarray(runStart, pos)));
      pos = runStart = this.#viaText(data, pos, out);
      const now = rescan ? this.#scanLooks() : null;
      if (now !== null) {
        rescan = false;
        const rest = data.subarray(pos);
        const restLooks = lookStarts(rest, now.lengths, now.prefix);
        if (restLooks !== null) {
          if (this.#passOnLooks(rest, out, restLooks) === null && rest.length > 0) out.push(verbatim(rest));
          return out;
        }
      }
    }
    if (out !== null && pos > runStart) out.push(verbatim(data.subarray(runStart, pos)));
    return out;
  }

  /**
   * The client text of whole events `data` for a shaper that drops by type ({@link Shaper.drops}):
   * the text of the events it does not drop, by the text path, in order; the events it drops are
   * not decoded (one the gateway reads is observed from its `data:` line, as {@link #passable}
   * does). Once the shaper says which types it refuses for good, one bulk scan ({@link lookRuns})
   * finds the runs of events to shape: every other event is the backend's own framing with a name
   * the gateway neither reads nor rewrites, and the shaper drops it.
   */
  #dropOn(data: Uint8Array): string {
    let out = "";
    let pos = 0;
    let scanned = false;
    const words = new DataView(data.buffer, data.byteOffset, data.byteLength);
    while (pos < data.length) {
      const scan = scanned ? null : this.#scanLooks();
      if (scan !== null) {
        // Scanned once (a chunk the scan does not take is checked event by event to its end).
        scanned = true;
        const rest = pos === 0 ? data : data.subarray(pos);
        const runs = lookRuns(rest, scan.lengths, scan.prefix);
        if (runs !== null) {
          for (let i = 0; i < runs.length; i += 2)
            out += this.#shape(blockEvents(rest.subarray(runs[i]!, runs[i + 1]!)));
          return out;
        }
      }
      const end = this.#passable(data, words, pos);
      if (end >= 0) {
        pos = end + 2;
        continue;
      }
      let blank = data.indexOf(LF, pos);
      while (data[blank + 1] !== LF) blank = data.indexOf(LF, blank + 1);
      out += this.#shape(blockEvents(data.subarray(pos, blank + 2)));
      pos = blank + 2;
    }
    return out;
  }

  /**
   * What the bulk scan looks at for a shaper that passes by type (its {@link Shaper.refuses}, the
   * types the gateway reads or rewrites), or null: each event is checked.
   */
  #scanLooks(): ScanLooks | null {
    const refusals = this.shaper.refuses?.() ?? null;
    if (refusals !== this.#refusals) {
      this.#refusals = refusals;
      this.#looks = refusals === null ? null : scanLooks(refusals);
    }
    return this.#looks;
  }

  /** {@link #passOn} when `looks` are the starts of the only events of `data` it need look at. */
  #passOnLooks(data: Uint8Array, parts: Uint8Array[] | null, looks: Int32Array): Uint8Array[] | null {
    if (looks.length === 0) return null;
    let out: Uint8Array[] | null = null;
    let runStart = 0;
    const words = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < looks.length; i++) {
      const pos = looks[i]!;
      if (this.#passable(data, words, pos) >= 0) continue;
      out ??= parts ?? [];
      if (pos > runStart) out.push(verbatim(data.subarray(runStart, pos)));
      runStart = this.#viaText(data, pos, out);
    }
    if (out !== null && data.length > runStart) out.push(verbatim(data.subarray(runStart)));
    return out;
  }

  /**
   * The event at `pos` of whole events `data` by the text path: its client text appended to `out`
   * (as {@link step} would send it). Returns where the next event starts.
   */
  #viaText(data: Uint8Array, pos: number, out: Uint8Array[]): number {
    let end = data.indexOf(LF, pos);
    while (data[end + 1] !== LF) end = data.indexOf(LF, end + 1);
    const ev = parseBlock(decodeMidStream(data.subarray(pos, end)));
    if (ev) {
      const text = this.#shape([ev]);
      if (text !== "") out.push(encoder.encode(text));
    }
    return end + 2;
  }

  /** The stream is over (everything sent): releases it, and ends the client text (null). */
  #over(): null {
    this.#finish(this.state.terminal === "completed" ? "success" : "error");
    return null;
  }

  /**
   * Once the stream is over: what its end waits for before the client sees it (the last bytes
   * known to be last, the close of the body, an assembled answer), undefined when nothing.
   */
  get settled(): Promise<unknown> | undefined {
    return this.#settling;
  }

  /** The client went away: stop the upstream call and release everything. */
  abort(): void {
    this.#ended = true;
    this.#finish("cancelled");
  }

  #broken(e: unknown): string {
    const idle = e instanceof StreamIdleTimeout;
    return this.#close(
      idle ? "stream_idle_timeout" : "stream_incomplete",
      idle
        ? `Upstream sent nothing for ${this.ctx.deps.settings.streamIdleTimeoutSeconds} s`
        : `Upstream stream broke: ${transportMessage(e)}`,
    );
  }

  #close(code: string, message: string): string {
    let out = "";
    if (this.state.terminal === null) {
      const json = failedEvent({ code, message }, this.state.responseId, this.ctx.deps.clock());
      out = this.#one("response.failed", json, formatEvent(json));
    }
    this.#ended = true;
    return out + this.shaper.end(this.state);
  }

  #shape(batch: readonly SseEvent[]): string {
    let out = "";
    for (const ev of batch) {
      const type = typeOf(ev);
      let json: Json | null = null;
      const raw = ev.raw;
      if (type === REWRITTEN || OBSERVED.has(type) || this.shaper.needsJson(type)) json = eventJson(ev);
      if (type === REWRITTEN) {
        const err = json ? eventError(json) : {};
        const failed = failedEvent(
          {
            ...err,
            code: String(err.code ?? err.type ?? "upstream_error").toLowerCase(),
            message: String(err.message ?? "Upstream error"),
          },
          this.state.responseId,
          this.ctx.deps.clock(),
        );
        out += this.#one("response.failed", failed, formatEvent(failed));
        continue;
      }
      out += this.#one(type, json, raw);
    }
    return out;
  }

  #one(type: string, json: Json | null, raw: string): string {
    if (json) this.#observe(type, json);
    return this.shaper.event(type, json, raw, this.state);
  }

  /** What the gateway reads of an event: the response id, usage, how it ended, rate limits. */
  #observe(type: string, json: Json): void {
    const s = this.state;
    const resp = isObject(json.response) ? json.response : null;
    if (resp && typeof resp.id === "string") s.responseId ??= resp.id;
    if (type === "response.completed" || type === "response.incomplete") {
      s.terminal = type === "response.completed" ? "completed" : "incomplete";
      s.usage = usageOf(resp) ?? s.usage;
      if (type === "response.incomplete") s.errorCode = "response_incomplete";
    } else if (type === "response.failed") {
      s.terminal = "failed";
      const err = eventError(json);
      s.errorCode = typeof err.code === "string" ? err.code : "upstream_error";
      s.errorMessage = typeof err.message === "string" ? err.message : null;
      s.usage = usageOf(resp) ?? s.usage;
    } else if (type === "codex.rate_limits") {
      const q = quotaFromEvent(json);
      if (q) this.ctx.quota.record(this.open.account.id, q, this.ctx.deps.clock());
    }
  }

  #finish(status: FinishStatus): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.#upstreamDone) {
      this.open.events.cancel();
      this.open.controller.abort();
    }
    this.open.lease.release();
    const settling = this.onFinish(this.state, status);
    if (settling instanceof Promise) this.#settling = settling;
  }
}

/** The SSE comment sent while the upstream is silent (clients and proxies ignore comments). */
export const KEEPALIVE = ": keepalive\n\n";
const KEEPALIVE_BYTES = encoder.encode(KEEPALIVE);

/** Steps taken before the client body was made (see {@link streamedBody}). */
interface Primed {
  readonly taken: Exclude<StepBytes, null>[];
  /** The answer's end was among them. */
  readonly ended: boolean;
  /** What taking the next step threw (the body fails with it when first read). */
  readonly error?: unknown;
  /** The end's settle has committed: the end goes out with the rest at once. */
  committed: boolean;
}

/**
 * Microtask turns {@link streamedBody} gives reads that are already satisfiable (bytes queued in
 * the upstream body) before it stops looking. No I/O runs between microtasks, so this never waits
 * for the upstream. Counted in the bench gateway at c64: every whole short answer (10,000 of
 * 10,000) and 5,990 of 6,000 whole 1,000-event answers had their end at hand after one turn; the
 * rest were still streaming. One more turn for margin; a streaming answer pays two turns.
 */
const AT_HAND_TURNS = 2;

/**
 * The client body of a stream ({@link toReadableStream}), made once the steps already at hand are
 * taken. When they include the answer's end and its settle is still committing (other requests of
 * the process hold reservations, and the client must not see the end before the commit), the body
 * is made after the commit, so the response head, the bytes and the end leave in one write; made at
 * once, the head went alone and the rest waited for the commit (two or three sends per short answer
 * under load instead of one: `bun scripts/bench-c64-pair.ts`, about 30 µs of CPU per request). The
 * bytes and the end reach the client no later than before; only the head waits with them. An answer
 * that is still streaming gets its body at once, with what was at hand.
 */
export async function streamedBody(
  ps: ProxyStream,
  keepaliveMs = 0,
  timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = systemClock,
): Promise<ReadableStream<Uint8Array>> {
  const taken: Exclude<StepBytes, null>[] = [];
  let ended = false;
  for (let turns = AT_HAND_TURNS; ; ) {
    let out: StepBytes | undefined;
    try {
      out = ps.stepBytesNow();
    } catch (error) {
      return toReadableStream(ps, keepaliveMs, timers, { taken, ended, error, committed: false });
    }
    if (out === undefined) {
      if (turns-- === 0) break;
      await null;
      continue;
    }
    if (out === null) {
      ended = true;
      break;
    }
    taken.push(out);
  }
  const primed: Primed = { taken, ended, committed: false };
  const settled = ended ? ps.settled : undefined;
  if (settled !== undefined) {
    try {
      await settled;
      primed.committed = true;
    } catch {
      // The end then waits for the failed settle as before (see `over`).
    }
  }
  return toReadableStream(ps, keepaliveMs, timers, primed);
}

/**
 * The client body of a stream, written as the upstream's chunks come (see `pushStream`: no
 * queue, no pull per chunk); the client going away aborts the upstream call. With `keepaliveMs`
 * > 0, a {@link KEEPALIVE} comment goes out whenever the client has waited that long for the
 * next bytes, so clients and proxies between do not give up on a quiet stream: never while the
 * client is not taking what was sent. One timer per stream, on the gateway's `timers`: it is not
 * moved on for every chunk, but set again for what is left when it fires early.
 */
export function toReadableStream(
  ps: ProxyStream,
  keepaliveMs = 0,
  timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = systemClock,
  primed?: Primed,
): ReadableStream<Uint8Array> {
  /** When the client began waiting for the next bytes (-1: it is not waiting). */
  let waitingSince = -1;
  let timer: TimerHandle | undefined;
  let done = false;
  let sink: PushSink | undefined;
  /** A keepalive the client has not taken yet (no other one goes out meanwhile). */
  let unsent = false;
  const stop = () => {
    done = true;
    if (timer !== undefined) timers.clearTimeout(timer);
    timer = undefined;
  };
  const tick = () => {
    timer = undefined;
    if (done || waitingSince < 0) return; // not waiting: the next wait sets it
    const now = timers.now();
    const waited = now - waitingSince;
    if (waited < keepaliveMs) {
      timer = timers.setTimeout(tick, keepaliveMs - waited);
      return;
    }
    if (!unsent && sink) {
      sink.write(KEEPALIVE_BYTES);
      const full = sink.flush();
      if (full) {
        unsent = true;
        void full.then(() => {
          unsent = false;
        });
      }
    }
    waitingSince = now;
    timer = timers.setTimeout(tick, keepaliveMs);
  };
  const failed = (e: unknown): never => {
    stop();
    ps.abort();
    throw e;
  };
  /** The next step's client bytes, when at hand without waiting (undefined: it would wait). */
  const stepNow = (): StepBytes | undefined => {
    try {
      return ps.stepBytesNow();
    } catch (e) {
      return failed(e);
    }
  };
  /**
   * Steps' bytes taken while more was at hand, not written yet: they go out together at the next
   * {@link flush}, or after the settle with the end ({@link over}). (A direct stream's writes leave
   * at the end of the turn even unflushed: bytes that must wait are kept here.)
   */
  const pending: Exclude<StepBytes, null>[] = [];
  /** Keeps `out` to send with the next flush (or the end). */
  const take = (out: Exclude<StepBytes, null>): void => {
    if (out === "" || (Array.isArray(out) && out.length === 0)) return;
    waitingSince = -1;
    pending.push(out);
  };
  /** Writes what was taken (the caller flushes, or closes). */
  const writePending = (s: PushSink): void => {
    for (const out of pending) {
      if (out instanceof Uint8Array) s.write(out);
      else if (Array.isArray(out)) for (const part of out) s.write(part);
      else s.write(encoder.encode(out));
    }
    pending.length = 0;
  };
  /** Sends what was taken: what to wait for before the next step (the client is not taking the bytes), or undefined. */
  const flush = (s: PushSink): Promise<unknown> | undefined => {
    if (pending.length === 0) return undefined;
    writePending(s);
    return s.flush();
  };
  /**
   * The stream is over: the bytes taken since the last flush are written, and the body closes,
   * once the request's settle has committed (`ps.settled`): the client never sees its answer end
   * before its usage is durable. Bytes read while the end was not known yet went out as they came.
   */
  const over = (s: PushSink): Promise<unknown> | undefined => {
    stop();
    const settled = ps.settled;
    if (settled === undefined || primed?.committed) {
      writePending(s);
      return undefined;
    }
    return settled.then(() => writePending(s));
  };
  const rest = async (s: PushSink, wait: Promise<unknown> | undefined): Promise<void> => {
    if (wait) await wait;
    for (;;) {
      if (done) return; // the client went away
      let out = stepNow();
      if (out === undefined) {
        // Nothing more at hand: what was written goes out now, before waiting for the upstream.
        const full = flush(s);
        if (full) {
          await full;
          continue;
        }
        // The client waits from here (a step at hand needs no keepalive: no timer for an answer
        // that goes out whole at once).
        if (keepaliveMs > 0) {
          waitingSince = timers.now();
          timer ??= timers.setTimeout(tick, keepaliveMs);
        }
        try {
          out = await ps.stepBytes();
        } catch (e) {
          failed(e);
        }
        if (done) return;
      }
      if (out === null) {
        await over(s);
        return;
      }
      take(out!);
    }
  };
  // Steps whose bytes are at hand go out together before anything is awaited: the answer's first bytes
  // leave with the response head, and an answer whose end was read already ends in that write.
  const run = (s: PushSink): Promise<unknown> | undefined => {
    sink = s;
    if (primed) {
      for (const out of primed.taken) take(out);
      if (primed.error !== undefined) failed(primed.error);
      if (primed.ended) return over(s);
    }
    for (;;) {
      const out = stepNow();
      if (out === undefined) return rest(s, flush(s));
      if (out === null) return over(s);
      take(out);
    }
  };
  return pushStream(run, () => {
    stop();
    ps.abort();
  });
}

/**
 * Runs a stream to its end without a client body (non-streaming answers are assembled by the
 * shaper); resolves once the request's settle, if `onFinish` started it, has committed.
 */
export async function drain(ps: ProxyStream): Promise<void> {
  while ((await ps.step()) !== null) {
    // the shaper collects what it needs
  }
  // The assembled answer waits for the request's settle, as a stream's end does.
  await ps.settled;
}
