/**
 * A short-lived cache of each API key's record and limit states, so a busy key does not cost a
 * handful of SQLite reads per proxied request. Entries are dropped when the request-log writer
 * writes rows of that key (its usage changed), when any key is changed through the admin API,
 * when a window of the cached states resets, and after {@link KEY_STATE_TTL_MS} in any case.
 *
 * Admission has its own entries, by presented key: the record that key resolved to (no SHA-256,
 * no store read per request). Log writes do not touch them (a key's record does not change with
 * its usage); key edits and the TTL do.
 *
 * @module
 */
import type { LimitState } from "./limits.ts";
import type { ApiKeyRecord } from "./repository.ts";

export const KEY_STATE_TTL_MS = 2000;

export interface KeyState {
  readonly key: ApiKeyRecord;
  readonly limits: readonly LimitState[];
}

/** Presented keys remembered at most (a flood of distinct wrong keys is never cached: only matches are). */
const MAX_PRESENTED = 10_000;

export class KeyStateCache {
  readonly #entries = new Map<string, { state: KeyState; at: number }>();
  readonly #presented = new Map<string, { key: ApiKeyRecord; at: number }>();
  readonly #listeners: ((keyId: string | null) => void)[] = [];

  constructor(private readonly ttlMs = KEY_STATE_TTL_MS) {}

  /** The cached state of `keyId` at `now`, or undefined when there is none or it may be stale. */
  get(keyId: string, now: number): KeyState | undefined {
    const e = this.#entries.get(keyId);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs || e.state.limits.some((l) => now >= l.resetsAt)) {
      this.#entries.delete(keyId);
      return undefined;
    }
    return e.state;
  }

  set(keyId: string, state: KeyState, now: number): void {
    this.#entries.set(keyId, { state, at: now });
  }

  /** The record a presented plain key resolved to at admission, while fresh. */
  presented(presented: string, now: number): ApiKeyRecord | undefined {
    const e = this.#presented.get(presented);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs) {
      this.#presented.delete(presented);
      return undefined;
    }
    return e.key;
  }

  /** Remembers what `presented` resolved to (`at` is when it was read from the store). */
  setPresented(presented: string, key: ApiKeyRecord, at: number): void {
    if (this.#presented.size >= MAX_PRESENTED && !this.#presented.has(presented)) this.#presented.clear();
    this.#presented.set(presented, { key, at });
  }

  /** The cached record of `presented` now shows `lastUsedAt` = `now` (it was just written). */
  touched(presented: string, now: number): void {
    const e = this.#presented.get(presented);
    if (e) e.key = { ...e.key, lastUsedAt: now };
  }

  /** Forgets one key (its usage changed), or every key (keys were edited); tells the listeners. */
  invalidate(keyId?: string | null): void {
    if (keyId === null) return;
    this.forget(keyId);
    for (const fn of this.#listeners) fn(keyId ?? null);
  }

  /**
   * Forgets one key's usage state, or everything (keys were edited: admission's entries too),
   * without telling anyone (another replica changed it).
   */
  forget(keyId?: string): void {
    if (keyId === undefined) {
      this.#entries.clear();
      this.#presented.clear();
    } else this.#entries.delete(keyId);
  }

  /** Runs `fn` on every invalidation (the cluster tells the other replicas). */
  onInvalidate(fn: (keyId: string | null) => void): void {
    this.#listeners.push(fn);
  }
}
