/**
 * The auth-refresh plugin's decisions, as pure functions of a hook event: which refresh and
 * usage failures kill an account (one table: `permanentFailureCodes` of the plugin API), that a transient failure backs
 * off (by the core's one backoff table, `src/core/health.ts`), and what a fresh usage reading means
 * for the account's status.
 *
 * @module
 */

import {
  type Action,
  backoffSeconds,
  permanentFailure,
  type RefreshFailedEvent,
  type UsageFailedEvent,
  type UsageFetchedEvent,
} from "../../src/plugin-api.ts";

/**
 * `refresh.failed`: a permanent code (from the table) deactivates with the table's status and
 * reason; anything else (network error, timeout, 5xx, unknown code) leaves the status alone and
 * backs the account off (`account.cooldown`), to be retried later.
 */
export function classifyRefreshFailure(e: RefreshFailedEvent): Action[] {
  const dead = permanentFailure(e.errorCode);
  if (dead) {
    return [
      { type: "account.deactivate", accountId: e.account.id, status: dead.status, reason: dead.reason },
    ];
  }
  // Still a valid access token: the gateway serves with it and retries in the background.
  if (e.accessTokenExpiresAt != null && e.accessTokenExpiresAt - e.now > VALID_SLACK_MS) return [];
  const what = e.transport
    ? (e.errorCode ?? "network error")
    : `HTTP ${e.httpStatus}${e.errorCode ? ` ${e.errorCode}` : ""}`;
  return [
    {
      type: "account.cooldown",
      accountId: e.account.id,
      until: e.now + backoffSeconds(e.account.failureStreak + 1) * 1000,
      reason: `Token refresh failed (${what}); retrying later`,
    },
  ];
}

/** Same slack as the refresher's: a token about to expire counts as expired. */
const VALID_SLACK_MS = 30_000;

const DEACTIVATED_MESSAGE = /account has been deactivated/i;

/**
 * `usage.failed`: HTTP 402/404, a permanent code, or a message saying the account has been
 * deactivated take the account out; a 403 (and a 401, which the poller already retried after a
 * refresh) and transient failures change nothing.
 */
export function classifyUsageFailure(e: UsageFailedEvent): Action[] {
  const dead = permanentFailure(e.errorCode);
  if (dead) {
    return [
      { type: "account.deactivate", accountId: e.account.id, status: dead.status, reason: dead.reason },
    ];
  }
  if (e.httpStatus === 402 || e.httpStatus === 404 || (e.message && DEACTIVATED_MESSAGE.test(e.message))) {
    const detail = e.message ? ` - ${e.message.slice(0, 200)}` : "";
    return [
      {
        type: "account.deactivate",
        accountId: e.account.id,
        status: "deactivated",
        reason: `Usage API error: HTTP ${e.httpStatus ?? "?"}${detail}`,
      },
    ];
  }
  return [];
}

/** How long a 100% reading whose reset has already passed keeps the account blocked. */
export const STALE_RESET_HOLD_MS = 60_000;
const FIVE_HOURS_MS = 5 * 3600_000;
const WEEK_MS = 7 * 24 * 3600_000;

/**
 * `usage.fetched`: the secondary window at 100% (and no usable credits) is `quota_exceeded`, the
 * primary at 100% is `rate_limited`, each until the window's reset; a blocked account whose reset
 * has passed and whose windows are below 100% becomes active again.
 */
export function decideFromUsage(e: UsageFetchedEvent): Action[] {
  const { account: a, primary, secondary, credits, now } = e;
  const creditsUsable =
    !!credits && (credits.unlimited || (credits.hasCredits && (credits.balance ?? 1) > 0));
  // No reset time: hold for the window's length. A reset already past while still at 100% is a
  // stale reading: hold briefly, the next poll brings the new window.
  const resetOf = (w: { resetAt: number | null; windowMinutes: number | null }, fallbackMs: number) =>
    w.resetAt === null
      ? now + (w.windowMinutes ? w.windowMinutes * 60_000 : fallbackMs)
      : w.resetAt > now
        ? w.resetAt
        : now + STALE_RESET_HOLD_MS;
  if (secondary && secondary.usedPercent >= 100 && !creditsUsable) {
    return [
      {
        type: "account.quota_exceeded",
        accountId: a.id,
        resetAt: resetOf(secondary, WEEK_MS),
        reason: "Secondary (weekly) usage window exhausted",
      },
    ];
  }
  if (primary && primary.usedPercent >= 100) {
    if (a.status === "quota_exceeded") return [];
    return [
      {
        type: "account.rate_limit",
        accountId: a.id,
        resetAt: resetOf(primary, FIVE_HOURS_MS),
        reason: "Primary (5 h) usage window exhausted",
      },
    ];
  }
  if (
    (a.status === "rate_limited" || a.status === "quota_exceeded") &&
    (a.resetAt === null || a.resetAt <= now)
  ) {
    return [{ type: "account.reactivate", accountId: a.id, reason: "Usage window reset" }];
  }
  return [];
}
