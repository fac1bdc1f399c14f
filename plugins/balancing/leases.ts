/**
 * Per-account concurrency: in-memory stream counters with a short FIFO wait queue. Provided to the
 * core as the `leases` service. A request that finds its account full waits for a slot, at most
 * the rest of its queue budget (one `CODEX_LB_ACCOUNT_QUEUE_WAIT_MS` per request, however many
 * accounts it tries), then gets 429 `proxy_overloaded` with `Retry-After`. An account back from a
 * backoff (`probe`) takes one request at a time until one has succeeded; the others wait behind
 * that probe. A lease is released exactly once however it ends: `release()` is idempotent, and an
 * abort of the request's signal releases it too (or takes a waiting request out of the queue).
 *
 * Counters are per process: several gateway processes each allow the cap.
 *
 * @module
 */
import {
  type AccountLeases,
  GatewayError,
  type Lease,
  type LeaseRequest,
  type TimerHandle,
  type Timers,
} from "../../src/plugin-api.ts";

export interface LeasePoolOptions {
  /** Streams allowed per account (read on each acquire, so it can follow a setting). */
  readonly maxStreams: () => number;
  /** How long a request waits for a slot before it is refused (one budget per request). */
  readonly queueWaitMs: () => number;
  /** The gateway's timers and time: queue deadlines run on its clock (a FakeClock in tests). */
  readonly timers: Timers;
  readonly now: () => number;
}

interface Waiter {
  /** Streams the account may have in flight for this waiter to go (1 for a probe). */
  readonly cap: () => number;
  readonly grant: () => void;
  readonly fail: (e: unknown) => void;
  /** The clock's time past which it is refused, and the request's whole queue budget. */
  readonly deadline: number;
  readonly budgetMs: number;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The request was aborted", "AbortError");
}

export class LeasePool implements AccountLeases {
  readonly #inFlight = new Map<string, number>();
  readonly #queues = new Map<string, Waiter[]>();
  /** One timer per account queue (not per waiter): due at the earliest deadline in the queue. */
  readonly #timers = new Map<string, TimerHandle>();

  constructor(private readonly opts: LeasePoolOptions) {}

  inFlight(accountId: string): number {
    return this.#inFlight.get(accountId) ?? 0;
  }

  /** The accounts with `cap` or more streams in flight: one pass over the accounts with streams. */
  atCap(cap: number): string[] {
    const out: string[] = [];
    for (const [id, n] of this.#inFlight) if (n >= cap) out.push(id);
    return out;
  }

  /** Requests waiting for a slot on the account. */
  queued(accountId: string): number {
    return this.#queues.get(accountId)?.length ?? 0;
  }

  /** Whether the account has a free slot now (under `cap`, by default the stream limit). */
  hasRoom(accountId: string, cap: number = this.opts.maxStreams()): boolean {
    return this.inFlight(accountId) < cap;
  }

  /** Every account with streams in flight or requests waiting. */
  stats(): Record<string, { inFlight: number; queued: number }> {
    const out: Record<string, { inFlight: number; queued: number }> = {};
    for (const id of new Set([...this.#inFlight.keys(), ...this.#queues.keys()])) {
      out[id] = { inFlight: this.inFlight(id), queued: this.queued(id) };
    }
    return out;
  }

  acquire(accountId: string, options: LeaseRequest = {}): Promise<Lease> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const cap = options.probe ? () => 1 : () => this.opts.maxStreams();
    if (this.hasRoom(accountId, cap()) && this.queued(accountId) === 0) {
      this.#take(accountId);
      return Promise.resolve(this.#lease(accountId, signal));
    }
    const budgetMs = this.opts.queueWaitMs();
    const waitMs = Math.max(0, budgetMs - Math.max(0, options.waitedMs ?? 0));
    // The request's queue budget is spent (on other accounts): refused at once, never queued.
    if (waitMs === 0) return Promise.reject(this.#overloaded(budgetMs));
    return new Promise<Lease>((resolve, reject) => {
      const queue = this.#queues.get(accountId) ?? [];
      this.#queues.set(accountId, queue);
      const leave = () => {
        // Slots go to the oldest waiter first: it is nearly always at the head.
        const i = queue[0] === waiter ? 0 : queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0 && this.#queues.get(accountId) === queue) {
          this.#queues.delete(accountId);
          this.opts.timers.clearTimeout(this.#timers.get(accountId));
          this.#timers.delete(accountId);
        }
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        leave();
        reject(abortError(signal!));
      };
      const waiter: Waiter = {
        cap,
        // The slot was already counted for this waiter by `#handOver`.
        grant: () => {
          leave();
          resolve(this.#lease(accountId, signal));
        },
        fail: (e) => {
          leave();
          reject(e);
        },
        deadline: this.opts.now() + waitMs,
        budgetMs,
      };
      queue.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#arm(accountId);
    });
  }

  /** Arms the account queue's timer for its earliest deadline, unless one is armed. */
  #arm(accountId: string): void {
    if (this.#timers.has(accountId)) return;
    const queue = this.#queues.get(accountId);
    if (!queue || queue.length === 0) return;
    let due = queue[0]!.deadline;
    for (const w of queue) if (w.deadline < due) due = w.deadline;
    const timer = this.opts.timers.setTimeout(
      () => {
        this.#timers.delete(accountId);
        this.#expire(accountId);
      },
      Math.max(0, due - this.opts.now()),
    );
    this.#timers.set(accountId, timer);
  }

  /** Refuses the waiters whose deadline has passed, then re-arms for the others. */
  #expire(accountId: string): void {
    const queue = this.#queues.get(accountId);
    if (!queue) return;
    // Timers may fire a fraction of a millisecond early.
    const now = this.opts.now() + 1;
    for (const w of queue.filter((x) => x.deadline <= now)) w.fail(this.#overloaded(w.budgetMs));
    this.#arm(accountId);
  }

  #take(accountId: string): void {
    this.#inFlight.set(accountId, this.inFlight(accountId) + 1);
  }

  #free(accountId: string): void {
    const n = this.inFlight(accountId) - 1;
    if (n > 0) this.#inFlight.set(accountId, n);
    else this.#inFlight.delete(accountId);
    this.#handOver(accountId);
  }

  /** Gives free slots to waiting requests, oldest first (a probe's waiter only to an idle account). */
  #handOver(accountId: string): void {
    const queue = this.#queues.get(accountId);
    while (queue && queue.length > 0 && this.hasRoom(accountId, queue[0]!.cap())) {
      this.#take(accountId);
      queue[0]!.grant();
    }
  }

  #lease(accountId: string, signal: AbortSignal | undefined): Lease {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      signal?.removeEventListener("abort", release);
      this.#free(accountId);
    };
    // A client that goes away frees its slot even if the caller never gets to call release().
    signal?.addEventListener("abort", release, { once: true });
    return { accountId, release };
  }

  #overloaded(waitedMs: number): GatewayError {
    const cap = this.opts.maxStreams();
    const retryAfter = Math.max(1, Math.ceil(waitedMs / 1000));
    return new GatewayError(
      "proxy_overloaded",
      `Every eligible account is at its limit of ${cap} concurrent streams (waited ${waitedMs} ms); retry shortly`,
      {},
      { "retry-after": String(retryAfter) },
    );
  }
}
