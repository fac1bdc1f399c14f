/**
 * What every proxy request of one gateway shares: the request-log writer (flushed on shutdown),
 * the live quota recorder, the attempt limits, and the work that waits until the answers being
 * written are out ({@link ProxyContext.afterAnswer}). Created once per gateway, on first use.
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
  /**
   * Runs `fn` in the next turn of the event loop, once the answers written in this one are out:
   * what only reports a finished request (its access line, metrics and span) would otherwise run
   * between a stream's last event and the runtime writing its end, and the client would wait for
   * it. What one turn defers runs together, in order; a throw is logged and the rest still run.
   */
  afterAnswer(fn: () => void): void;
  /** Runs what {@link afterAnswer} still holds, at once (a gateway that stops). */
  flushDeferred(): void;
}

const contexts = new WeakMap<AppDeps, ProxyContext>();

/** The proxy context of a gateway (one per `deps`). */
export function proxyContext(deps: AppDeps): ProxyContext {
  let ctx = contexts.get(deps);
  if (ctx) return ctx;
  const log = deps.log.child({ component: "proxy" });
  const logs = deps.requestLogs;
  let deferred: (() => void)[] = [];
  let scheduled = false;
  const runDeferred = () => {
    scheduled = false;
    const fns = deferred;
    deferred = [];
    for (const fn of fns) {
      try {
        fn();
      } catch (e) {
        log.error(
          { err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) },
          "reporting a finished request failed",
        );
      }
    }
  };
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
    afterAnswer: (fn) => {
      deferred.push(fn);
      if (scheduled) return;
      scheduled = true;
      // Not a timer: the next turn of the loop, after the runtime wrote this turn's answers.
      setImmediate(runDeferred);
    },
    flushDeferred: runDeferred,
  };
  contexts.set(deps, ctx);
  return ctx;
}
