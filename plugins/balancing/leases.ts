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

/**
 * A request waiting for a slot: a node of its account's FIFO and of the pool's deadline list (both
 * doubly linked, so granting, refusing or aborting it is O(1)); it is its own abort listener.
 */
class Waiter {
  /** Neighbours in the account's queue (oldest first). */
  prev: Waiter | null = null;
  next: Waiter | null = null;
  /** Neighbours in the pool's deadline list (earliest first). */
  dPrev: Waiter | null = null;
  dNext: Waiter | null = null;
  /** False once granted, refused or aborted. */
  waiting = true;

  constructor(
    readonly queue: WaitQueue,
    /** A probe waits for an idle account (cap 1); others for a free slot under the stream limit. */
    readonly probe: boolean,
    /** The clock's time past which it is refused, and the request's whole queue budget. */
    readonly deadline: number,
    readonly budgetMs: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (lease: Lease) => void,
    readonly reject: (e: unknown) => void,
    readonly pool: LeasePool,
  ) {}

  /** The request's signal aborted: out of the queue, rejected with the abort reason. */
  handleEvent(): void {
    if (!this.waiting) return;
    this.pool.leave(this);
    this.reject(abortError(this.signal!));
  }
}

/** One account's waiting requests, oldest first. */
interface WaitQueue {
  readonly accountId: string;
  head: Waiter | null;
  tail: Waiter | null;
  size: number;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The request was aborted", "AbortError");
}

export class LeasePool implements AccountLeases {
  readonly #inFlight = new Map<string, number>();
  readonly #queues = new Map<string, WaitQueue>();
  /** Every waiter of every account, by deadline (ties: oldest first). */
  #dHead: Waiter | null = null;
  #dTail: Waiter | null = null;
  /** One timer for the whole pool (not per waiter or account), due at the earliest deadline. */
  #timer: TimerHandle | undefined;
  #timerDue = Number.POSITIVE_INFINITY;

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
    return this.#queues.get(accountId)?.size ?? 0;
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
    const probe = options.probe === true;
    if (this.hasRoom(accountId, this.#capOf(probe)) && this.queued(accountId) === 0) {
      this.#take(accountId);
      return Promise.resolve(this.#lease(accountId, signal));
    }
    const budgetMs = this.opts.queueWaitMs();
    const waitMs = Math.max(0, budgetMs - Math.max(0, options.waitedMs ?? 0));
    // The request's queue budget is spent (on other accounts): refused at once, never queued.
    if (waitMs === 0) return Promise.reject(this.#overloaded(budgetMs));
    return new Promise<Lease>((resolve, reject) => {
      let queue = this.#queues.get(accountId);
      if (!queue) {
        queue = { accountId, head: null, tail: null, size: 0 };
        this.#queues.set(accountId, queue);
      }
      const waiter = new Waiter(
        queue,
        probe,
        this.opts.now() + waitMs,
        budgetMs,
        signal,
        resolve,
        reject,
        this,
      );
      waiter.prev = queue.tail;
      if (queue.tail) queue.tail.next = waiter;
      else queue.head = waiter;
      queue.tail = waiter;
      queue.size++;
      this.#insertByDeadline(waiter);
      signal?.addEventListener("abort", waiter, { once: true });
      this.#arm();
    });
  }

  /** Into the deadline list, from its end: deadlines nearly always arrive in order, so O(1). */
  #insertByDeadline(w: Waiter): void {
    let after = this.#dTail;
    while (after && after.deadline > w.deadline) after = after.dPrev;
    w.dPrev = after;
    w.dNext = after ? after.dNext : this.#dHead;
    if (w.dNext) w.dNext.dPrev = w;
    else this.#dTail = w;
    if (after) after.dNext = w;
    else this.#dHead = w;
  }

  /** Takes a waiter out of its queue and the deadline list (granted, refused or aborted). @internal */
  leave(w: Waiter): void {
    w.waiting = false;
    const q = w.queue;
    if (w.prev) w.prev.next = w.next;
    else q.head = w.next;
    if (w.next) w.next.prev = w.prev;
    else q.tail = w.prev;
    q.size--;
    if (q.size === 0 && this.#queues.get(q.accountId) === q) this.#queues.delete(q.accountId);
    if (w.dPrev) w.dPrev.dNext = w.dNext;
    else this.#dHead = w.dNext;
    if (w.dNext) w.dNext.dPrev = w.dPrev;
    else this.#dTail = w.dPrev;
    w.signal?.removeEventListener("abort", w);
    if (this.#dHead === null) this.#disarm();
  }

  /**
   * Arms the pool's timer for the earliest deadline unless it is armed for that time or earlier
   * (a timer due before the earliest deadline just re-arms when it fires).
   */
  #arm(): void {
    const first = this.#dHead;
    if (!first || (this.#timer !== undefined && this.#timerDue <= first.deadline)) return;
    this.#disarm();
    this.#timerDue = first.deadline;
    this.#timer = this.opts.timers.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerDue = Number.POSITIVE_INFINITY;
        this.#expire();
      },
      Math.max(0, first.deadline - this.opts.now()),
    );
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.opts.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
  }

  /** Refuses the waiters whose deadline has passed (from the front of the list), then re-arms. */
  #expire(): void {
    // Timers may fire a fraction of a millisecond early.
    const now = this.opts.now() + 1;
    while (this.#dHead && this.#dHead.deadline <= now) {
      const w = this.#dHead;
      this.leave(w);
      w.reject(this.#overloaded(w.budgetMs));
    }
    this.#arm();
  }

  /** Streams an account may run before a waiter gets its lease: a probe after a backoff waits for an idle account. */
  #capOf(probe: boolean): number {
    return probe ? 1 : this.opts.maxStreams();
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
    if (!queue) return;
    while (queue.head && this.hasRoom(accountId, this.#capOf(queue.head.probe))) {
      const w = queue.head;
      this.#take(accountId);
      this.leave(w);
      w.resolve(this.#lease(accountId, w.signal));
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
    // Not `{ once: true }`: release() removes the listener itself, and the option costs ~0.2 µs.
    signal?.addEventListener("abort", release);
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
