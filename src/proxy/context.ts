/**
 * What every proxy request of one gateway shares: the request-log writer (flushed on shutdown),
 * the live quota recorder and the attempt limits. Created once per gateway, on first use.
 *
 * @module
 */
import type { AppDeps } from "../app/deps.ts";
import { RequestLogWriter } from "../request-logs/writer.ts";
import { LiveQuotaRecorder } from "./live-quota.ts";
import { SnapshotCache } from "./snapshot-cache.ts";

/** Accounts one request may try before the last failure is shown to the client. */
export const MAX_ACCOUNTS_PER_REQUEST = 3;

export interface ProxyContext {
  readonly deps: AppDeps;
  readonly logs: RequestLogWriter;
  readonly quota: LiveQuotaRecorder;
  readonly upstreamUrl: string;
  /** Account snapshots for selection, dropped on every applied account action. */
  readonly snapshots: SnapshotCache;
}

const contexts = new WeakMap<AppDeps, ProxyContext>();

/** The proxy context of a gateway (one per `deps`). */
export function proxyContext(deps: AppDeps): ProxyContext {
  let ctx = contexts.get(deps);
  if (ctx) return ctx;
  const log = deps.log.child({ component: "proxy" });
  const logs = new RequestLogWriter(deps.store.db, log, deps.settings.requestLogFlushMs);
  deps.onStop(() => logs.stop());
  const snapshots = new SnapshotCache(() => deps.services.accounts.list());
  deps.applier.onApplied(() => snapshots.invalidate());
  ctx = {
    deps,
    snapshots,
    logs,
    quota: new LiveQuotaRecorder(deps.store.db, (e) =>
      log.warn({ err: e instanceof Error ? e.message : String(e) }, "live quota write failed"),
    ),
    upstreamUrl: deps.settings.upstreamBaseUrl.replace(/\/+$/, ""),
  };
  contexts.set(deps, ctx);
  return ctx;
}

/** Makes the proxy re-read accounts on its next request (for code that changes accounts without an action). */
export function invalidateAccountSnapshots(deps: AppDeps): void {
  contexts.get(deps)?.snapshots.invalidate();
}
