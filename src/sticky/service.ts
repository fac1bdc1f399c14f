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
import type { StickyBinding, StickyKind, StickyStore } from "./store.ts";

/** How often expired bindings are deleted (they are ignored anyway once expired). */
export const STICKY_SWEEP_INTERVAL_MS = 5 * 60_000;

/** Sticky session bindings as plugins see them (read-only). `now` defaults to the gateway clock. */
export interface StickyReader {
  /** The live binding of `key`, or null when there is none or it expired. */
  lookup(key: string, options?: { now?: EpochMs }): Promise<StickyBinding | null>;
  /** The account that produced an upstream response id (`previous_response_id`), from the request logs. */
  responseOwner(responseId: string): Promise<string | null>;
}

/** The core's side: the reader plus the writes the applier performs for sticky actions. */
export interface StickyService extends StickyReader {
  /** Binds (or moves) `key` to `accountId` for the configured TTL; only if still bound to `expected` when given. */
  bind(
    key: string,
    kind: StickyKind,
    accountId: string,
    options?: { now?: EpochMs; expected?: string | null },
  ): Promise<boolean>;
  /** Slides the expiry of a binding just used (cheap: skipped when refreshed recently). */
  touch(key: string, options?: { now?: EpochMs; accountId?: string }): Promise<boolean>;
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
): StickyService {
  const ttlMs = async () => (await settings.get()).stickyTtlSeconds * 1000;
  return {
    lookup: (key, o) => store.get(key, o?.now ?? clock()),
    bind: async (key, kind, accountId, o) =>
      store.bindIf(key, kind, accountId, o?.expected, o?.now ?? clock(), await ttlMs()),
    touch: async (key, o) => store.touch(key, o?.now ?? clock(), await ttlMs(), o?.accountId),
    forget: (key, o) => store.deleteIf(key, o?.expected),
    responseOwner,
    sweep: (o) => store.expire(o?.now ?? clock()),
  };
}
