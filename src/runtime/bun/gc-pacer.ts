/**
 * Asks the engine for a full garbage collection while many requests are in flight: every
 * `CODEX_LB_GC_REQUEST_STEP` units of work (a request arriving, a chunk read from an upstream body)
 * done while at least as many requests are in flight (the server's own count, open streams
 * included) ask for one. After a collection the next waits `CODEX_LB_GC_MIN_INTERVAL_MS`, and at
 * least four times as long as that one took (collections take at most a fifth of the time).
 *
 * Why: thousands of streams at once leave garbage (each request's reading, checks and set-up, and
 * each upstream chunk's read buffer) while the memory the open requests hold keeps growing. Bun's
 * `fetch` reports each chunk's 64 KB read buffer to the engine as extra memory, and the engine's
 * and Bun's collection timers run seconds late while the event loop is busy with such a load (a
 * 1 s timer in the gateway fired after 15 s), so the full collections came at moments that varied
 * from run to run: the peak RSS of 9,950 streams spread from 447 to 1,003 MB. Counting work instead
 * of time keeps collecting while the loop is busy.
 *
 * With fewer requests in flight than the step (the normal path) nothing is asked: the cost is one
 * counter per request and per chunk, and a read of the server's count once per step. The collection
 * runs in a microtask once the current handler has yielded, not on a timer.
 *
 * @module
 */

/** The server's count of requests in flight (Bun's `Server.pendingRequests`). */
export interface InFlight {
  readonly pendingRequests: number;
}

export interface GcPacerOptions {
  /** Units of work, with at least as many requests in flight, that ask for a collection; 0: never. */
  readonly step: number;
  /** Least time from the end of one collection to the next, in ms (of `now`). */
  readonly minIntervalMs: number;
  /** Monotonic milliseconds (`performance.now()` by default). */
  readonly now?: () => number;
  /** The collection (Bun's full, synchronous one by default). */
  readonly collect?: () => void;
  /** Runs the collection once the current work has yielded (`queueMicrotask` by default). */
  readonly schedule?: (run: () => void) => void;
}

/** After a collection that took `d` ms, the next waits at least `d * WAIT_FACTOR` ms. */
const WAIT_FACTOR = 4;

/** Counts work and asks for a collection each `step` of it while as many requests are in flight. */
export class GcPacer {
  /** Work done since the last collection (or since the count was last found too low). */
  #work = 0;
  /** When the next collection may run (of `now`). */
  #nextAt = Number.NEGATIVE_INFINITY;
  #pending = false;
  #server: InFlight | null = null;
  readonly #step: number;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #collect: () => void;
  readonly #schedule: (run: () => void) => void;
  readonly #run = () => this.#collectNow();

  constructor(options: GcPacerOptions) {
    this.#step = options.step;
    this.#minIntervalMs = options.minIntervalMs;
    this.#now = options.now ?? (() => performance.now());
    this.#collect = options.collect ?? (() => Bun.gc(true));
    this.#schedule = options.schedule ?? queueMicrotask;
  }

  /** The server whose requests in flight are counted; until then nothing is asked. */
  attach(server: InFlight): void {
    this.#server = server;
  }

  /** One unit of work done (a request arrived, an upstream chunk was read). */
  tick(): void {
    if (++this.#work < this.#step || this.#step === 0 || this.#pending) return;
    // Read once per step of work: with fewer in flight, counting starts again.
    if (this.#server === null || this.#server.pendingRequests < this.#step) {
      this.#work = 0;
      return;
    }
    if (this.#now() < this.#nextAt) return;
    this.#pending = true;
    this.#schedule(this.#run);
  }

  #collectNow(): void {
    this.#pending = false;
    const started = this.#now();
    this.#collect();
    const ended = this.#now();
    this.#work = 0;
    this.#nextAt = ended + Math.max(this.#minIntervalMs, (ended - started) * WAIT_FACTOR);
  }
}

/** The gateway's pacer (one per process: a collection is the whole process's), once listening. */
let active: GcPacer | null = null;

/** Makes `pacer` the one {@link gcTick} feeds (the last server to listen with one). */
export function setActiveGcPacer(pacer: GcPacer): void {
  active = pacer;
}

/**
 * `pacer`'s server closed: {@link gcTick} feeds none any more, unless another server's pacer has
 * become the process's since (a process with two servers, as tests run them, keeps that one).
 */
export function releaseGcPacer(pacer: GcPacer): void {
  if (active === pacer) active = null;
}

/** One unit of work for the process's pacer, if any (an upstream chunk read). */
export function gcTick(): void {
  active?.tick();
}
