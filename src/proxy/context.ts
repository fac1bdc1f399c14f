/**
 * What every proxy request of one gateway shares: the request-log writer (flushed on shutdown),
 * the live quota recorder and the attempt limits. Created once per gateway, on first use.
 *
 * @module
 */
import type { AppDeps } from "../core/deps.ts";
import { LiveQuotaRecorder } from "./live-quota.ts";

/** Accounts one request may try before the last failure is shown to the client. */
export const MAX_ACCOUNTS_PER_REQUEST = 3;

export interface ProxyContext {
  readonly deps: AppDeps;
  readonly logs: AppDeps["requestLogs"];
  readonly quota: LiveQuotaRecorder;
  readonly upstreamUrl: string;
}

const contexts = new WeakMap<AppDeps, ProxyContext>();

/** The proxy context of a gateway (one per `deps`). */
export function proxyContext(deps: AppDeps): ProxyContext {
  let ctx = contexts.get(deps);
  if (ctx) return ctx;
  const log = deps.log.child({ component: "proxy" });
  const logs = deps.requestLogs;
  ctx = {
    deps,
    logs,
    quota: new LiveQuotaRecorder(
      async (accountId, q, now) => {
        await deps.accounts.recordUsage(accountId, {
          primary: q.primary,
          secondary: q.secondary,
          credits: null,
        });
        const account = await deps.services.accounts.get(accountId);
        if (account)
          await deps.services.fire("usage.fetched", {
            account,
            primary: q.primary,
            secondary: q.secondary,
            now,
          });
      },
      (e) => log.warn({ err: e instanceof Error ? e.message : String(e) }, "live quota write failed"),
    ),
    upstreamUrl: deps.settings.upstreamBaseUrl.replace(/\/+$/, ""),
  };
  contexts.set(deps, ctx);
  return ctx;
}
