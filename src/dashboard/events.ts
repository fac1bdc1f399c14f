/**
 * Live admin events: what changed, by topic, for `GET /api/events` (server-sent events). Producers
 * call `publish(topic, data)`; each open stream gets every event. A burst on one topic within
 * {@link COALESCE_MS} is sent as one event (the dashboard refetches per event, so a hundred request
 * rows in one flush are one refetch, not a hundred). Timers come from the injected clock.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../core/clock.ts";

/** The topics the dashboard listens to. */
export const eventTopics = ["requests", "accounts", "settings", "api-keys", "firewall", "audit"] as const;
export type EventTopic = (typeof eventTopics)[number];

/** Events on one topic within this many ms are merged into one. */
export const COALESCE_MS = 100;
/** Most streams open at once (each holds a socket); more get 503. */
export const MAX_STREAMS = 64;

export interface AdminEvent {
  readonly topic: EventTopic;
  /** Merged payload: for `requests`, `{ count, requestIds }` (at most 50 ids); else `{ count }`. */
  readonly data: { count: number; requestIds?: string[] };
}

export class AdminEvents {
  readonly #subs = new Set<(e: AdminEvent) => void>();
  readonly #pending = new Map<EventTopic, { count: number; requestIds: string[] }>();
  #timer: TimerHandle | null = null;
  #closed = false;
  readonly #closers = new Set<() => void>();

  constructor(private readonly timers: Clock) {}

  /** Announces a change; `requestIds` name new request-log rows. */
  publish(topic: EventTopic, requestIds: readonly string[] = []): void {
    if (this.#closed || this.#subs.size === 0) return;
    const p = this.#pending.get(topic) ?? { count: 0, requestIds: [] };
    p.count += Math.max(1, requestIds.length);
    for (const id of requestIds) if (p.requestIds.length < 50) p.requestIds.push(id);
    this.#pending.set(topic, p);
    this.#timer ??= this.timers.setTimeout(() => this.#flush(), COALESCE_MS);
  }

  #flush(): void {
    this.#timer = null;
    const batch = [...this.#pending];
    this.#pending.clear();
    for (const [topic, p] of batch) {
      const data = topic === "requests" ? { count: p.count, requestIds: p.requestIds } : { count: p.count };
      for (const fn of this.#subs) fn({ topic, data });
    }
  }

  /** Number of open streams. */
  get size(): number {
    return this.#subs.size;
  }

  /**
   * Registers a stream: `send` gets each event, `close` is called when the hub shuts down.
   * Returns the unsubscribe function, or null when {@link MAX_STREAMS} are open or the hub is closed.
   */
  subscribe(send: (e: AdminEvent) => void, close: () => void): (() => void) | null {
    if (this.#closed || this.#subs.size >= MAX_STREAMS) return null;
    this.#subs.add(send);
    this.#closers.add(close);
    return () => {
      this.#subs.delete(send);
      this.#closers.delete(close);
    };
  }

  /** Ends every stream (shutdown: a graceful stop must not wait for them). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.timers.clearTimeout(this.#timer);
    this.#timer = null;
    for (const c of [...this.#closers]) c();
    this.#subs.clear();
    this.#closers.clear();
  }
}
