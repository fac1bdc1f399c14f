/**
 * Reads an upstream SSE body chunk by chunk with an idle deadline: each `next()` waits for the next
 * chunk (at most `idleMs`) and returns the events it completed. Nothing is buffered beyond the
 * unfinished tail of one event.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../core/clock.ts";
import { type SseEvent, SseReader } from "./sse.ts";

export class StreamIdleTimeout extends Error {
  override name = "StreamIdleTimeout";
}

export class UpstreamEvents {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #sse = new SseReader();
  #done = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    private readonly idleMs: number,
    /** The gateway's timers (the idle deadline runs on its clock). */
    private readonly timers: Pick<Clock, "setTimeout" | "clearTimeout"> = systemClock,
  ) {
    this.#reader = body.getReader();
  }

  /** The next raw chunk of the body, or null once it has ended (for byte pass-through; see {@link clean}). */
  async nextChunk(): Promise<Uint8Array | null> {
    if (this.#done) return null;
    let timer: TimerHandle | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = this.timers.setTimeout(
        () => reject(new StreamIdleTimeout(`upstream silent for ${this.idleMs} ms`)),
        this.idleMs,
      );
    });
    try {
      const r = await Promise.race([this.#reader.read(), idle]);
      if (r.done) {
        this.#done = true;
        return null;
      }
      return r.value;
    } finally {
      this.timers.clearTimeout(timer);
    }
  }

  /** Whether the event reader holds nothing, so raw chunks may be read from here on. */
  get clean(): boolean {
    return this.#sse.clean;
  }

  /** Events of bytes read through {@link nextChunk}, handed back to the event reader. */
  pushBytes(bytes: Uint8Array): SseEvent[] {
    return this.#sse.push(bytes);
  }

  /** The event reader's last event (one without its blank line), once the body has ended. */
  endBytes(): SseEvent[] {
    return this.#sse.end();
  }

  /** The events of the next chunk (possibly none), or null once the body has ended. */
  async next(): Promise<SseEvent[] | null> {
    if (this.#done) return null;
    let timer: TimerHandle | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = this.timers.setTimeout(
        () => reject(new StreamIdleTimeout(`upstream silent for ${this.idleMs} ms`)),
        this.idleMs,
      );
    });
    try {
      const r = await Promise.race([this.#reader.read(), idle]);
      if (r.done) {
        this.#done = true;
        return this.#sse.end();
      }
      return this.#sse.push(r.value);
    } finally {
      this.timers.clearTimeout(timer);
    }
  }

  /** Stops reading and releases the upstream body (the caller aborts the fetch as well). */
  cancel(reason?: unknown): void {
    this.#done = true;
    this.#reader.cancel(reason).catch(() => {});
  }
}
