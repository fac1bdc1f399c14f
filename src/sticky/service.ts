/**
 * The `sticky` service plugins get on `GatewayServices`: read and write bindings without touching
 * the table, with the TTL taken from the runtime settings (`stickyTtlSeconds`).
 *
 * @module
 */
import type { EpochMs } from "../core/types.ts";
import type { RuntimeSettingsReader } from "../runtime-settings/store.ts";
import type { StickyBinding, StickyKind, StickyStore } from "./store.ts";

/** Sticky session bindings as plugins see them. `now` defaults to the gateway clock. */
export interface StickyService {
  /** The live binding of `key`, or null when there is none or it expired. */
  lookup(key: string, options?: { now?: EpochMs }): Promise<StickyBinding | null>;
  /** Binds (or moves) `key` to `accountId` for the configured TTL. */
  bind(key: string, kind: StickyKind, accountId: string, options?: { now?: EpochMs }): Promise<void>;
  /** Slides the expiry of a binding that was just used (cheap: skipped when refreshed recently). */
  touch(key: string, options?: { now?: EpochMs }): Promise<void>;
  /** Removes a binding; true when it existed. */
  forget(key: string): Promise<boolean>;
  /** The account that produced an upstream response id (`previous_response_id`), from the request logs. */
  responseOwner(responseId: string): Promise<string | null>;
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
      store.bind(key, kind, accountId, o?.now ?? clock(), await ttlMs()),
    touch: async (key, o) => {
      await store.touch(key, o?.now ?? clock(), await ttlMs());
    },
    forget: (key) => store.delete(key),
    responseOwner,
    sweep: (o) => store.expire(o?.now ?? clock()),
  };
}
