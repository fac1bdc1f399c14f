/**
 * The sticky bindings this replica last read or refreshed, so a request whose key is known is
 * routed without a store read (`StickyReader.cached`). Coherence:
 * - a change made here (bind, forget, an operator's delete, an import) drops the key, and so does
 *   another replica's change when the cluster feed brings it (topic `sticky`); after the feed's
 *   connection was re-opened every key is dropped; a bind, forget or touch that found the store
 *   otherwise than the decision (or the cache) saw drops the key too (src/sticky/service.ts);
 * - a read of the store under way when the key is dropped does not fill the cache (the caller gets
 *   what it read), nor does one begun before another read of the key that already filled it: the
 *   rule of every cache filled from the store, src/core/fill-guard.ts;
 * - a touch made here refreshes the entry (and a read of the key under way no longer fills it);
 *   another replica's touch only moves the stored expiry later, so the entry expires first and the
 *   next request reads the store again. An entry is used
 *   only before its `expiresAt` and before `updatedAt` + the current TTL (so a lowered TTL that
 *   another replica's touch wrote is honoured); every runtime-settings change drops all entries;
 * - bounded: the least recently read or refreshed entry goes first beyond `max` entries;
 * - read-only: a kept binding is frozen, since every later reader (a plugin too) gets that object.
 *
 * @module
 */
import { FillGuard } from "../core/fill-guard.ts";
import type { EpochMs } from "../core/types.ts";
import type { StickyBinding } from "./store.ts";

/** Entries kept at most (a key is at most 512 characters; usual keys are ids of about 36). */
export const STICKY_CACHE_MAX = 10_000;

export class StickyCache {
  readonly #entries = new Map<string, StickyBinding>();
  /** When a read of a key may fill its entry (dropped by a change). */
  readonly #fills = new FillGuard<string>();

  constructor(readonly max: number = STICKY_CACHE_MAX) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The cached binding of `key` while live at `now` under a TTL of `ttlMs`, or null when unknown. */
  get(key: string, now: EpochMs, ttlMs: number): StickyBinding | null {
    const b = this.#entries.get(key);
    if (b === undefined) return null;
    if (b.expiresAt <= now) {
      this.#entries.delete(key);
      return null;
    }
    return b.updatedAt + ttlMs > now ? b : null;
  }

  /**
   * Reads `key` from the store through `read` and keeps the answer (a binding, or its absence), but
   * only if the key was not dropped while the read was under way, and no read of it begun later
   * filled it first.
   */
  read(key: string, read: () => Promise<StickyBinding | null>): Promise<StickyBinding | null> {
    return this.#fills.read(key, read, (b) => {
      if (b === null) this.#entries.delete(key);
      else this.#put(b);
    });
  }

  /** Keys with a read of the store under way (for tests). */
  get reading(): number {
    return this.#fills.pending;
  }

  /** Whether the cache knows `key` is held by `accountId` and was refreshed after `since`. */
  refreshedSince(key: string, accountId: string, since: EpochMs): boolean {
    const b = this.#entries.get(key);
    return b !== undefined && b.accountId === accountId && b.updatedAt > since;
  }

  /** A touch here wrote `updatedAt: now`, `expiresAt: now + ttlMs` to the binding held by `accountId`. */
  touched(key: string, accountId: string, now: EpochMs, ttlMs: number): void {
    // A change: a read of the key begun before it would put back the binding as it was.
    this.#fills.drop(key);
    const b = this.#entries.get(key);
    if (b === undefined) return;
    if (b.accountId !== accountId) this.drop(key);
    else this.#put({ ...b, updatedAt: now, expiresAt: now + ttlMs });
  }

  /** Forgets `key` (null: every key), and any read of it under way may no longer fill the cache. */
  drop(key: string | null): void {
    if (key === null) {
      this.#entries.clear();
      this.#fills.drop();
    } else {
      this.#entries.delete(key);
      this.#fills.drop(key);
    }
  }

  /** Forgets the entries expired at `now` (after the store's sweep). */
  prune(now: EpochMs): void {
    for (const [key, b] of this.#entries) if (b.expiresAt <= now) this.#entries.delete(key);
  }

  #put(b: StickyBinding): void {
    // Re-inserted at the end: the map's order is the order of the last read from the store or
    // refresh, oldest first (a `get` does not reorder: no map write on the selection path).
    this.#entries.delete(b.key);
    if (this.#entries.size >= this.max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    // Frozen: the entry is what every later reader gets (the balancer, a plugin's `lookup` or
    // `cached`); one that changed it would reroute the key here without the store knowing.
    this.#entries.set(b.key, Object.freeze(b));
  }
}
