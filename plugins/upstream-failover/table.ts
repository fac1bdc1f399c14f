/**
 * The one table that turns an upstream failure seen by the proxy into account actions. Pure
 * functions of the event: the same input always gives the same actions, so the table is tested
 * row by row. Permanent auth codes come from the auth-refresh table (one table, not two).
 *
 * @module
 */

import {
  type AccountAction,
  backoffSeconds,
  type EpochMs,
  type FailureDetails,
  permanentFailure,
} from "../../src/plugin-api.ts";

export type FailureClass = "rate_limit" | "quota" | "permanent" | "transient" | "client";

const RATE_LIMIT = new Set(["rate_limit_exceeded", "usage_limit_reached"]);
const QUOTA = new Set(["insufficient_quota", "usage_not_included", "quota_exceeded"]);
const TRANSIENT = new Set([
  "server_error",
  "upstream_error",
  "stream_incomplete",
  "stream_idle_timeout",
  "overloaded_error",
  "server_is_overloaded",
  "upstream_unavailable",
  "timeout",
  "transport_error",
]);

/** Shortest rate-limit block: a hint of "try again in 2s" still keeps the account out for 30 s. */
export const MIN_RATE_LIMIT_SECONDS = 30;
/** A quota block without any reset hint lasts an hour, then the account is tried again. */
export const DEFAULT_QUOTA_SECONDS = 3600;
/** Reset times further ahead than this are not believed. */
const MAX_RESET_AHEAD_MS = 366 * 24 * 3600 * 1000;

/** Which kind of failure this is; `client` failures are the request's fault and cost the account nothing. */
export function classify(f: FailureDetails): FailureClass {
  const code = f.errorCode?.toLowerCase() ?? null;
  const type = f.errorType?.toLowerCase() ?? null;
  if (code && RATE_LIMIT.has(code)) return "rate_limit";
  if (type === "usage_limit_reached") return "rate_limit";
  if (code && QUOTA.has(code)) return "quota";
  if (permanentFailure(code)) return "permanent";
  if (f.transport) return "transient";
  if (code && TRANSIENT.has(code)) return "transient";
  if (f.message && /selected model is at capacity/i.test(f.message)) return "transient";
  if (f.httpStatus === 429) return "rate_limit";
  if (f.httpStatus !== null && f.httpStatus >= 500) return "transient";
  // A 401 that survived a forced token refresh: keep the account out for a while, do not kill it.
  if (f.httpStatus === 401) return "transient";
  return "client";
}

/**
 * Seconds from a hint such as "Please try again in 1h2m3s", "try again in 6m0s", "in 500ms",
 * "Try again in 20.5s"; null when the message has none.
 */
export function retryHintSeconds(message: string | null | undefined): number | null {
  if (!message) return null;
  const m = /try again in\s+((?:\d+(?:\.\d+)?\s*(?:ms|h|m|s)\s*)+)/i.exec(message);
  if (!m) return null;
  let total = 0;
  for (const part of m[1]!.matchAll(/(\d+(?:\.\d+)?)\s*(ms|h|m|s)/gi)) {
    const n = Number(part[1]);
    const unit = part[2]!.toLowerCase();
    total += unit === "h" ? n * 3600 : unit === "m" ? n * 60 : unit === "ms" ? n / 1000 : n;
  }
  return total;
}

/**
 * When a rate-limit or quota block ends: `resets_at` (already in ms) if it is ahead and sane, else
 * now + `resets_in_seconds`, else now + the message's hint, else now + `fallbackSeconds`; never
 * sooner than `minSeconds` from now. Rounded up to a whole second.
 */
export function resetAtFor(
  f: { resetsAt: EpochMs | null; resetsInSeconds: number | null; message: string | null },
  now: EpochMs,
  opts: { minSeconds: number; fallbackSeconds: number },
): EpochMs {
  let at: number | null = null;
  if (f.resetsAt !== null && f.resetsAt > now && f.resetsAt - now <= MAX_RESET_AHEAD_MS) at = f.resetsAt;
  else if (f.resetsInSeconds !== null && f.resetsInSeconds > 0) at = now + f.resetsInSeconds * 1000;
  else {
    const hint = retryHintSeconds(f.message);
    at = now + (hint ?? opts.fallbackSeconds) * 1000;
  }
  at = Math.max(at, now + opts.minSeconds * 1000);
  return Math.ceil(at / 1000) * 1000;
}

export interface FailureInput extends FailureDetails {
  readonly accountId: string;
  readonly failureStreak: number;
  readonly resetsAt: EpochMs | null;
  readonly resetsInSeconds: number | null;
  readonly now: EpochMs;
}

/** The account actions for one failure (empty for a client error). */
export function actionsFor(f: FailureInput): AccountAction[] {
  const cls = classify(f);
  const what = f.errorCode ?? (f.httpStatus !== null ? `HTTP ${f.httpStatus}` : "transport error");
  switch (cls) {
    case "rate_limit":
      return [
        {
          type: "account.rate_limit",
          accountId: f.accountId,
          resetAt: resetAtFor(f, f.now, { minSeconds: MIN_RATE_LIMIT_SECONDS, fallbackSeconds: 0 }),
          reason: `Upstream ${what}`,
        },
      ];
    case "quota":
      return [
        {
          type: "account.quota_exceeded",
          accountId: f.accountId,
          resetAt: resetAtFor(f, f.now, {
            minSeconds: MIN_RATE_LIMIT_SECONDS,
            fallbackSeconds: DEFAULT_QUOTA_SECONDS,
          }),
          reason: `Upstream ${what}`,
        },
      ];
    case "permanent": {
      const p = permanentFailure(f.errorCode)!;
      return [{ type: "account.deactivate", accountId: f.accountId, status: p.status, reason: p.reason }];
    }
    case "transient":
      return [
        {
          type: "account.cooldown",
          accountId: f.accountId,
          // Counting this failure; below the threshold the cooldown ends at once but the streak grows.
          until: f.now + backoffSeconds(f.failureStreak + 1) * 1000,
          reason: `Upstream ${what}`,
        },
      ];
    case "client":
      return [];
  }
}
