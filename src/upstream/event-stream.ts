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
import { Buffer } from "node:buffer";
import { type Clock, systemClock } from "../core/clock.ts";
import { gcTick } from "../runtime/bun/gc-pacer.ts";
import { IdleDeadline } from "./idle-deadline.ts";
import { MAX_EVENT_CHARS, parseBlock, type SseEvent, SseReader } from "./sse.ts";

export class StreamIdleTimeout extends Error {
  override name = "StreamIdleTimeout";
  /** The one wording for both upstreams (HTTP event stream and WebSocket turn). */
  constructor(idleMs: number) {
    super(`upstream silent for ${idleMs} ms`);
  }
}

const LF = 10;
const CR = 13;
const EMPTY = new Uint8Array(0);
const BLANK = Buffer.from("\n\n");
const NOTHING: EventBytes = { head: null, body: EMPTY };
/** How many first events next() hands out one per call (the attempt loop reads up to the first real one). */
const ONE_BY_ONE = 6;
/** Decodes whole events (never at the start of a stream, so a byte-order mark is a character). */
const midStream = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Where the last complete event of `data[from..]` ends (after its blank line), `from` when none
 * does: as a forward scan for `\n\n` from `from` would find it (in a run of line feeds, pairs count
 * from the run's start, an odd one left over begins the next event).
 */
export function lastEventEnd(data: Uint8Array, from = 0): number {
  const j = lastIndexOf.call(data, BLANK);
  if (j < from) return from;
  let r = j;
  while (r > from && data[r - 1] === LF) r--;
  return (j + 2 - r) % 2 === 0 ? j + 2 : j + 1;
}

/** Where the first complete event of `data` ends (after its blank line), 0 when none does. */
function firstEventEnd(data: Uint8Array): number {
  const j = indexOf.call(data, BLANK);
  return j < 0 ? 0 : j + 2;
}

/**
 * Buffer's native searches for a byte sequence, called on any Uint8Array: a Buffer view over a
 * chunk would cost an object, and on a chunk made in JavaScript its ArrayBuffer (about 0.4 µs).
 */
const { indexOf, lastIndexOf } = Buffer.prototype as unknown as {
  indexOf: (this: Uint8Array, value: Uint8Array | number, from?: number) => number;
  lastIndexOf: (this: Uint8Array, value: Uint8Array) => number;
};

/**
 * Whole events as the upstream sent them, in two parts (so a chunk is not copied to join them):
 * `head` usually completes the event held from earlier chunks, `body` the events after it.
 */
export interface EventBytes {
  readonly head: Uint8Array | null;
  readonly body: Uint8Array;
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

/** The backend's own framing, as bytes: an event's `event: ` line, then its `data: ` line. */
export const EVENT_LINE = Buffer.from("event: ");
export const DATA_LINE = Buffer.from("data: ");

/** `bytes[at..]` begins with `prefix`. */
export function startsWith(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * `framedLineEnd` (sse.ts) on an event's bytes: where its `event:` line ends when the block is one
 * `event: ` line then one `data: ` line, else -1 (tests/upstream/framing.test.ts checks they agree).
 */
export function framedLineEndBytes(block: Uint8Array): number {
  if (!startsWith(block, 0, EVENT_LINE)) return -1;
  const nl = indexOf.call(block, LF, 7);
  return nl >= 0 && startsWith(block, nl + 1, DATA_LINE) && indexOf.call(block, LF, nl + 7) < 0 ? nl : -1;
}

/**
 * The event of `block` (an event's bytes before its blank line) when it has the backend's own
 * framing, one `event:` line then one `data:` line, else null (then {@link parseBlock} reads its
 * decoded text). Its `data` and `raw` are decoded when first read: the first events the attempt
 * reads (up to the first real one) are looked at by name, and go out as bytes when they can be put
 * back ({@link UpstreamEvents.replay}); a real backend's `response.created` and
 * `response.in_progress` carry the whole Response object (~30 KB each). The same event as
 * `parseBlock(decode(block))`: its lines split at line feeds, which UTF-8 never has inside a
 * character, so each part decodes alone as it does in the whole.
 */
function framedEvent(block: Uint8Array): SseEvent | null {
  const nl = framedLineEndBytes(block);
  if (nl < 0) return null;
  let data: string | undefined;
  let raw: string | undefined;
  return {
    event: midStream.decode(block.subarray(7, nl)),
    get data() {
      data ??= midStream.decode(block.subarray(nl + 7));
      return data;
    },
    get raw() {
      raw ??= `${midStream.decode(block)}\n\n`;
      return raw;
    },
  };
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
  /** The idle deadline over the reads: one timer per stream, moved on lazily. */
  readonly #deadline: IdleDeadline;
  #idle = false;
  /** Whole events read but not handed out yet (next() hands out the first events one by one). */
  #ready: EventBytes | null = null;
  /** A read started before it was asked for (see {@link replay}), and what it gave once settled. */
  #ahead: Ahead | null = null;
  /** Events next() has handed out one at a time. */
  #single = 0;
  /**
   * The events handed out one at a time, while they are all from one read's whole events (its
   * `head` from `from` then its `body`, or its `body` from `from`) and nothing else was read since,
   * so {@link replay} can put them back: `data` is the part the first came from, `body` what
   * followed that part, `ready` what #ready held after the last of them. Null before the first;
   * false once replay cannot be done.
   */
  #handedOut:
    | {
        readonly data: Uint8Array;
        readonly from: number;
        readonly body: Uint8Array;
        ready: EventBytes | null;
      }
    | null
    | false = null;

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly idleMs: number,
    /** The gateway's clock and timers (the idle deadline runs on them). */
    timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = systemClock,
  ) {
    this.#reader = body.getReader();
    this.#deadline = new IdleDeadline(idleMs, timers, this.#expire);
  }

  /**
   * The next whole events as the upstream's bytes (byte mode: `\n\n`-ended blocks, possibly none),
   * or their events once the stream is read by the event reader (text mode, and the last event of
   * an ended body), or null once the body has ended.
   */
  async nextBytes(): Promise<EventBytes | SseEvent[] | null> {
    const now = this.nextBytesNow();
    if (now !== undefined) return now;
    return this.#bytes(await this.#read());
  }

  /**
   * What {@link nextBytes} would give when it is at hand without waiting: events read already, or
   * a read started ahead that has settled (then the stream's end, too, is known at once). Undefined
   * when it would have to wait.
   */
  nextBytesNow(): EventBytes | SseEvent[] | null | undefined {
    const ahead = this.#ahead;
    // Ended (cancelled, or gone idle: then the read ahead settles as the idle timeout).
    if (this.#done && !(ahead && this.#idle)) return null;
    const ready = this.#ready;
    if (ready) {
      this.#ready = null;
      return ready;
    }
    if (ahead === null || !ahead.settled) return undefined;
    this.#ahead = null;
    return this.#bytes(this.#took(ahead));
  }

  /** The events of a chunk just read (null: the body ended). */
  #bytes(chunk: Uint8Array | null): EventBytes | SseEvent[] | null {
    // Bytes read after events were handed out: those events cannot be put back any more.
    if (this.#handedOut !== null) this.#handedOut = false;
    if (chunk === null) {
      const last = this.#end();
      return last.length > 0 ? last : null;
    }
    if (this.#sse) return this.#sse.push(chunk);
    const before = this.#started;
    if (chunk.length > 0) this.#started = true;
    // A byte-order mark may open the stream (the event reader strips it); CR line ends.
    if ((!before && chunk[0] === 0xef) || chunk.indexOf(CR) >= 0) return this.#toText(chunk, before);
    let head: Uint8Array | null = null;
    let from = 0;
    if (this.#tailLen > 0) {
      const last = this.#tail[this.#tail.length - 1]!;
      // The held event ends at the first blank line: across the chunk's start, or inside it.
      from = last[last.length - 1] === LF && chunk[0] === LF ? 1 : firstEventEnd(chunk);
      if (from === 0) {
        // No event completed: keep the chunk aside without copying.
        this.#keep(chunk);
        return this.#tailLen > MAX_EVENT_CHARS ? this.#toText(EMPTY, true) : NOTHING;
      }
      head = concat(this.#tail, this.#tailLen, chunk.subarray(0, from));
      this.#tail = [];
      this.#tailLen = 0;
    }
    const end = lastEventEnd(chunk, from);
    if (end < chunk.length) this.#keep(end === 0 ? chunk : chunk.slice(end));
    const body = end > from ? chunk.subarray(from, end) : EMPTY;
    if (this.#tailLen > MAX_EVENT_CHARS) {
      // An event this large: the event reader counts its characters (and refuses it past the limit).
      const events = blockEvents(head ?? EMPTY).concat(blockEvents(body));
      return events.concat(this.#toText(EMPTY, true));
    }
    return head === null && body === EMPTY ? NOTHING : { head, body };
  }

  /**
   * The events of the next chunk (possibly none), or null once the body has ended. The first
   * {@link ONE_BY_ONE} events come one per call: a reader that looks at the first events only (the
   * attempt loop, up to the first real event) leaves the rest of the chunk as bytes for
   * {@link nextBytes}, so a pass-through need not decode them.
   */
  next(): Promise<SseEvent[] | null> {
    // The next of the first events, already read: no read, so no async step either.
    const ready = this.#ready;
    if (ready !== null && this.#single < ONE_BY_ONE && !this.#done) {
      this.#ready = null;
      return Promise.resolve(this.#first(ready));
    }
    return this.#next();
  }

  async #next(): Promise<SseEvent[] | null> {
    const x = await this.nextBytes();
    if (x === null || Array.isArray(x)) return x;
    if (this.#single < ONE_BY_ONE) return this.#first(x);
    this.#handedOut = false;
    if (x.head === null) return blockEvents(x.body);
    return blockEvents(x.head).concat(blockEvents(x.body));
  }

  /** The first event of `x` (none if it has none); the bytes after it wait in #ready. */
  #first(x: EventBytes): SseEvent[] {
    let data = x.head ?? x.body;
    let rest = x.head ? x.body : EMPTY;
    let pos = 0;
    for (;;) {
      if (pos >= data.length) {
        if (rest.length === 0) return [];
        data = rest;
        rest = EMPTY;
        pos = 0;
      }
      const start = pos;
      let end = data.indexOf(LF, pos);
      while (data[end + 1] !== LF) end = data.indexOf(LF, end + 1);
      const block = data.subarray(pos, end);
      const ev = framedEvent(block) ?? parseBlock(midStream.decode(block));
      pos = end + 2;
      if (ev) {
        this.#single++;
        const left = data.subarray(pos);
        if (left.length > 0) this.#ready = { head: left, body: rest };
        else if (rest.length > 0) this.#ready = { head: null, body: rest };
        const given = this.#handedOut;
        // The events handed out stay one read's while each comes from what the last one left of it
        // (from its head or, once that is used up, its body: an event completed across chunks first).
        if (given === null) this.#handedOut = { data, from: start, body: rest, ready: this.#ready };
        else if (given !== false) {
          if (given.ready !== null && x === given.ready) given.ready = this.#ready;
          else this.#handedOut = false;
        }
        return [ev];
      }
    }
  }

  /**
   * Puts the events {@link next} has handed out so far back in front of what is not read yet, as
   * their bytes, when it can (they all came from one chunk, and nothing else was read since):
   * {@link nextBytes} then hands them out again, so a pass-through sends them as the upstream's
   * own bytes with the rest. False (nothing changes) when it cannot.
   */
  replay(): boolean {
    const given = this.#handedOut;
    this.#handedOut = false;
    if (!given || this.#ready !== given.ready) return false;
    // The events and what followed them: the rest of their part, then the body after that part.
    const events = given.data.subarray(given.from);
    const body = given.body;
    this.#ready = body.length === 0 ? { head: null, body: events } : { head: events, body };
    // The pass-through sends these at once and reads on: the next read starts now, so when the
    // body has ended already (a short answer in one chunk) that is known without waiting, and the
    // client gets the answer and its end in one write (see nextBytesNow).
    this.#readAhead();
    return true;
  }

  #readAhead(): void {
    if (this.#done || this.#ahead) return;
    this.#deadline.begin();
    const settle = (result: ReadResult | undefined, failed: boolean, error: unknown) => {
      ahead.result = result;
      ahead.failed = failed;
      ahead.error = error;
      ahead.settled = true;
      this.#deadline.end();
    };
    const ahead: Ahead = {
      settled: false,
      result: undefined,
      failed: false,
      error: undefined,
      promise: this.#reader.read().then(
        (r) => settle(r, false, undefined),
        // Kept exactly as the body gave it (even undefined): thrown as a read on #read would throw it.
        (e: unknown) => settle(undefined, true, e),
      ),
    };
    this.#ahead = ahead;
  }

  /** The chunk a settled read ahead gave (null: the body ended), or its failure thrown. */
  #took(ahead: Ahead): Uint8Array | null {
    if (ahead.failed) throw ahead.error;
    return this.#arrived(ahead.result!);
  }

  /** Stops reading and releases the upstream body (the caller aborts the fetch as well). */
  cancel(reason?: unknown): void {
    this.#done = true;
    this.#deadline.disarm();
    this.#reader.cancel(reason).catch(() => {});
  }

  async #read(): Promise<Uint8Array | null> {
    const ahead = this.#ahead;
    if (ahead) {
      this.#ahead = null;
      await ahead.promise;
      return this.#took(ahead);
    }
    this.#deadline.begin();
    let r: ReadResult;
    try {
      r = await this.#reader.read();
    } finally {
      this.#deadline.end();
    }
    return this.#arrived(r);
  }

  /** What a read gave: its chunk, or null once the body ended; throws when the upstream went idle. */
  #arrived(r: ReadResult): Uint8Array | null {
    gcTick();
    if (this.#idle) throw new StreamIdleTimeout(this.idleMs);
    if (r.done) {
      this.#done = true;
      this.#deadline.disarm();
      return null;
    }
    return r.value;
  }

  /** The pending read lasted `idleMs`: it is ended (as done); #read then reports the idle timeout. */
  readonly #expire = (): void => {
    if (this.#done) return;
    this.#idle = true;
    this.#done = true;
    this.#reader.cancel(new StreamIdleTimeout(this.idleMs)).catch(() => {});
  };

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

type ReadResult = Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;

/** A read started ahead ({@link UpstreamEvents.replay}): `promise` settles once `result` or `error` is set. */
interface Ahead {
  readonly promise: Promise<void>;
  settled: boolean;
  result: ReadResult | undefined;
  /** The read failed: {@link error} is what it failed with (any value, undefined included). */
  failed: boolean;
  error: unknown;
}

/** The pieces and `last`, joined (`n`: the pieces' total length). */
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
