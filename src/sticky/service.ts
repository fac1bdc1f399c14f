/**
 * Sticky bindings as the gateway sees them: plugins get the read-only {@link StickyReader}
 * (`GatewayServices.sticky`) and change bindings only by actions (`sticky.bind`, `sticky.touch`,
 * `sticky.forget`), which the core applies through {@link StickyService} with the TTL taken from
 * the runtime settings (`stickyTtlSeconds`).
 *
 * @module
 */
import type { EpochMs } from "../core/types.ts";
import type { RuntimeSettingsReader } from "../runtime-settings/store.ts";
import { StickyCache } from "./cache.ts";
import { type StickyBinding, type StickyKind, type StickyStore, touchMinIntervalMs } from "./store.ts";

/** How often expired bindings are deleted (they are ignored anyway once expired). */
export const STICKY_SWEEP_INTERVAL_MS = 5 * 60_000;

/** Sticky session bindings as plugins see them (read-only). `now` defaults to the gateway clock. */
export interface StickyReader {
  /** The live binding of `key`, or null when there is none or it expired. */
  lookup(key: string, options?: { now?: EpochMs }): Promise<StickyBinding | null>;
  /**
   * The live binding of `key` when this replica knows it without reading the store, else null
   * (then call `lookup`; null never means "unbound"). It may lag a change made on another replica
   * by the time the cluster's change feed takes to bring it (milliseconds; see
   * openspec/specs/account-routing/spec.md). Optional: a reader of your own need not have a cache.
   */
  cached?(key: string, options?: { now?: EpochMs }): StickyBinding | null;
  /** The account that produced an upstream response id (`previous_response_id`), from the request logs. */
  responseOwner(responseId: string): Promise<string | null>;
}

/** The core's side: the reader plus the writes the applier performs for sticky actions. */
export interface StickyService extends StickyReader {
  cached(key: string, options?: { now?: EpochMs }): StickyBinding | null;
  /** Binds (or moves) `key` to `accountId` for the configured TTL; only if still bound to `expected` when given. */
  bind(
    key: string,
    kind: StickyKind,
    accountId: string,
    options?: { now?: EpochMs; expected?: string | null },
  ): Promise<boolean>;
  /** Slides the expiry of a binding just used (cheap: skipped when refreshed recently). */
  touch(key: string, options?: { now?: EpochMs; accountId?: string }): Promise<boolean>;
  /**
   * True when `touch` would write nothing and this is known without the store: the cached binding
   * is `accountId`'s and was refreshed within the minimum interval (so `touch` answers false).
   */
  touchSkips(key: string, options: { now?: EpochMs; accountId: string }): boolean;
  /** Drops cached bindings (`key`, or all when null): another replica changed them, or the TTL changed. */
  forgetCached(key: string | null): void;
  /** Removes a binding (still held by `expected`, when given); true when it existed. */
  forget(key: string, options?: { expected?: string }): Promise<boolean>;
  /** Deletes expired bindings (they are ignored anyway; this keeps the table small); returns how many. */
  sweep(options?: { now?: EpochMs }): Promise<number>;
}

export function createStickyService(
  store: StickyStore,
  settings: RuntimeSettingsReader,
  clock: () => EpochMs,
  /** Who produced a response: the request-log writer, which also sees rows not yet written. */
  responseOwner: (responseId: string) => Promise<string | null>,
  /** Binding read from the store or refreshed here; see src/sticky/cache.ts for its coherence. */
  cache: StickyCache = new StickyCache(),
): StickyService {
  const ttlMs = async () => (await settings.get()).stickyTtlSeconds * 1000;
  const cachedTtlMs = () => {
    const s = settings.cached?.();
    return s ? s.stickyTtlSeconds * 1000 : null;
  };
  // A binding, moved or removed here (or by an import) is read afresh next time.
  store.onChanged((key) => cache.drop(key));
  const skips = (key: string, accountId: string, now: EpochMs, ttl: number) =>
    cache.refreshedSince(key, accountId, now - touchMinIntervalMs(ttl));
  return {
    lookup: (key, o) => cache.read(key, () => store.get(key, o?.now ?? clock())),
    cached: (key, o) => {
      const ttl = cachedTtlMs();
      return ttl === null ? null : cache.get(key, o?.now ?? clock(), ttl);
    },
    bind: async (key, kind, accountId, o) => {
      const bound = await store.bindIf(key, kind, accountId, o?.expected, o?.now ?? clock(), await ttlMs());
      // Stale: the key changed after the decision saw it; whatever is cached may be that old view.
      if (!bound) cache.drop(key);
      return bound;
    },
    touch: async (key, o) => {
      const now = o?.now ?? clock();
      const ttl = await ttlMs();
      const accountId = o?.accountId;
      // The store's own condition (refreshed within the minimum interval) would write nothing.
      if (accountId !== undefined && skips(key, accountId, now, ttl)) return false;
      const wrote = await store.touch(key, now, ttl, accountId);
      if (wrote && accountId !== undefined) cache.touched(key, accountId, now, ttl);
      // Not written although the cache did not know it would not be: it may be behind the store.
      else cache.drop(key);
      return wrote;
    },
    touchSkips: (key, o) => {
      const ttl = cachedTtlMs();
      return ttl !== null && skips(key, o.accountId, o.now ?? clock(), ttl);
    },
    forget: async (key, o) => {
      const deleted = await store.deleteIf(key, o?.expected);
      // Nothing matched: as for a stale bind, whatever is cached may be the old view the decision saw.
      if (!deleted) cache.drop(key);
      return deleted;
    },
    forgetCached: (key) => cache.drop(key),
    responseOwner,
    sweep: async (o) => {
      const now = o?.now ?? clock();
      const n = await store.expire(now);
      cache.prune(now);
      return n;
    },
  };
}
