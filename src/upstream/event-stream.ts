/**
 * Reads an upstream SSE body chunk by chunk with an idle deadline. Bytes are split into events at
 * their blank lines without decoding (byte mode): a pass-through takes whole events as the
 * upstream's own bytes ({@link UpstreamEvents.nextBytes}), and events are decoded once per chunk
 * only for a reader that wants them ({@link UpstreamEvents.next}). A stream whose framing needs the
 * full SSE rules (CR line ends, a byte-order mark, a giant event) goes to the event reader
 * ({@link SseReader}) from there on, so either way the events are exactly the event reader's.
 * Nothing is held but the tail of one unfinished event.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../core/clock.ts";
import { MAX_EVENT_CHARS, parseBlock, type SseEvent, SseReader } from "./sse.ts";

export class StreamIdleTimeout extends Error {
  override name = "StreamIdleTimeout";
}

const LF = 10;
const CR = 13;
const EMPTY = new Uint8Array(0);
/** Decodes whole events (never at the start of a stream, so a byte-order mark is a character). */
const midStream = new TextDecoder("utf-8", { ignoreBOM: true });

/** Where the last complete event of `data[from..]` ends (after its blank line), `from` when none does. */
export function lastEventEnd(data: Uint8Array, from = 0): number {
  let pos = from;
  for (;;) {
    let nl = data.indexOf(LF, pos);
    while (nl >= 0 && data[nl + 1] !== LF) nl = data.indexOf(LF, nl + 1);
    if (nl < 0 || nl + 1 >= data.length) return pos;
    pos = nl + 2;
  }
}

/** The events of whole event blocks (`\n\n`-ended, no CR), decoded once. */
export function blockEvents(blocks: Uint8Array): SseEvent[] {
  if (blocks.length === 0) return [];
  const text = midStream.decode(blocks);
  const out: SseEvent[] = [];
  let start = 0;
  let end = text.indexOf("\n\n");
  while (end >= 0) {
    const ev = parseBlock(text.slice(start, end));
    if (ev) out.push(ev);
    start = end + 2;
    end = text.indexOf("\n\n", start);
  }
  return out;
}

/** Decodes bytes in the middle of a stream (a byte-order mark there is a character, as the event reader keeps it). */
export function decodeMidStream(bytes: Uint8Array): string {
  return midStream.decode(bytes);
}

export class UpstreamEvents {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** The event reader, once the stream needed it (text mode); null in byte mode. */
  #sse: SseReader | null = null;
  /** Byte mode: the unfinished event's bytes, in pieces. */
  #tail: Uint8Array[] = [];
  #tailLen = 0;
  /** Some byte has been seen (a byte-order mark is only stripped before the first). */
  #started = false;
  #done = false;
  /** The idle deadline: one timer per stream, moved on lazily (see #onTimer). */
  #timer: TimerHandle | undefined;
  /** When the pending read began (-1: no read pending). */
  #waitingSince = -1;
  #idle = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly idleMs: number,
    /** The gateway's clock and timers (the idle deadline runs on them). */
    private readonly timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = systemClock,
  ) {
    this.#reader = body.getReader();
  }

  /**
   * The next whole events as the upstream's bytes (byte mode: `\n\n`-ended blocks, possibly none),
   * or their events once the stream is read by the event reader (text mode, and the last event of
   * an ended body), or null once the body has ended.
   */
  async nextBytes(): Promise<Uint8Array | SseEvent[] | null> {
    if (this.#done) return null;
    const chunk = await this.#read();
    if (chunk === null) return this.#end();
    if (this.#sse) return this.#sse.push(chunk);
    const before = this.#started;
    if (chunk.length > 0) this.#started = true;
    // A byte-order mark may open the stream (the event reader strips it); CR line ends.
    if ((!before && chunk[0] === 0xef) || chunk.indexOf(CR) >= 0) return this.#toText(chunk, before);
    let data = chunk;
    if (this.#tailLen > 0) {
      const last = this.#tail[this.#tail.length - 1]!;
      // No event completed: keep the chunk aside without copying.
      if (!(last[last.length - 1] === LF && chunk[0] === LF) && lastEventEnd(chunk) === 0) {
        this.#keep(chunk);
        return this.#tailLen > MAX_EVENT_CHARS ? this.#toText(EMPTY, true) : EMPTY;
      }
      data = concat(this.#tail, this.#tailLen, chunk);
      this.#tail = [];
      this.#tailLen = 0;
    }
    const end = lastEventEnd(data);
    if (end < data.length) this.#keep(end === 0 ? data : data.slice(end));
    // An event this large: the event reader counts its characters (and refuses it past the limit).
    if (this.#tailLen > MAX_EVENT_CHARS)
      return [...blockEvents(data.subarray(0, end)), ...this.#toText(EMPTY, true)];
    return end === 0 ? EMPTY : data.subarray(0, end);
  }

  /** The events of the next chunk (possibly none), or null once the body has ended. */
  async next(): Promise<SseEvent[] | null> {
    const x = await this.nextBytes();
    return x === null || Array.isArray(x) ? x : blockEvents(x);
  }

  /** Stops reading and releases the upstream body (the caller aborts the fetch as well). */
  cancel(reason?: unknown): void {
    this.#done = true;
    this.#disarm();
    this.#reader.cancel(reason).catch(() => {});
  }

  async #read(): Promise<Uint8Array | null> {
    this.#waitingSince = this.timers.now();
    if (this.#timer === undefined) this.#timer = this.timers.setTimeout(this.#onTimer, this.idleMs);
    let r: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;
    try {
      r = await this.#reader.read();
    } finally {
      this.#waitingSince = -1;
    }
    if (this.#idle) throw new StreamIdleTimeout(`upstream silent for ${this.idleMs} ms`);
    if (r.done) {
      this.#done = true;
      this.#disarm();
      return null;
    }
    return r.value;
  }

  /**
   * The idle deadline is the start of the pending read plus `idleMs`. The timer is not moved on
   * every chunk: when it fires early (reads happened since), it is set again for what is left.
   */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#done || this.#waitingSince < 0) return; // no read pending: the next read sets it
    const waited = this.timers.now() - this.#waitingSince;
    if (waited < this.idleMs) {
      this.#timer = this.timers.setTimeout(this.#onTimer, this.idleMs - waited);
      return;
    }
    this.#idle = true;
    this.#done = true;
    // Ends the pending read (as done); #read then reports the idle timeout.
    this.#reader.cancel(new StreamIdleTimeout(`upstream silent for ${this.idleMs} ms`)).catch(() => {});
  };

  #disarm(): void {
    if (this.#timer !== undefined) {
      this.timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #keep(bytes: Uint8Array): void {
    this.#tail.push(bytes);
    this.#tailLen += bytes.length;
  }

  /**
   * From here on the event reader reads the stream, starting with the bytes held. `midStream`:
   * bytes came before (a byte-order mark is then a character, not stripped).
   */
  #toText(chunk: Uint8Array, midStream: boolean): SseEvent[] {
    const sse = new SseReader(midStream);
    this.#sse = sse;
    const out: SseEvent[] = [];
    for (const part of this.#tail) for (const ev of sse.push(part)) out.push(ev);
    this.#tail = [];
    this.#tailLen = 0;
    for (const ev of sse.push(chunk)) out.push(ev);
    return out;
  }

  /** The body ended: the held bytes' last event (one without its blank line). */
  #end(): SseEvent[] {
    if (this.#sse) return this.#sse.end();
    if (this.#tailLen === 0) return [];
    // Held bytes never open with a byte-order mark (that stream went to the event reader at once).
    const events = this.#toText(EMPTY, true);
    return events.concat(this.#sse!.end());
  }
}

function concat(parts: readonly Uint8Array[], n: number, last: Uint8Array): Uint8Array {
  const out = new Uint8Array(n + last.length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out.set(last, at);
  return out;
}
