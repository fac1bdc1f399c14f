/**
 * Account health rules, one table each, used by the proxy (which accounts are candidates) and by
 * the plugins that decide backoffs (failover, token refresh) and rank accounts (balancing):
 * the transient-failure backoff arithmetic and whether an account may serve a request now.
 *
 * Backoff lives in the account row (`failure_streak`, `cooldown_until`), kept by the core's applier:
 * a transient failure emits `account.cooldown` with `until = now + backoffSeconds(streak + 1)`, and
 * a success emits `account.healthy`, which clears both.
 *
 * @module
 */
import type { AccountSnapshot, EpochMs } from "./types.ts";

/** Transient failures in a row before an account is put in backoff. */
export const BACKOFF_THRESHOLD = 3;
/** First backoff, in seconds; it doubles with each further failure. */
export const BACKOFF_BASE_SECONDS = 30;
/** Longest backoff, in seconds. */
export const BACKOFF_MAX_SECONDS = 300;

/**
 * Seconds an account stays out after `streak` transient failures in a row: none below the
 * threshold, then 30, 60, 120, 240, 300, 300, ... A non-finite or negative streak counts as 0.
 */
export function backoffSeconds(streak: number): number {
  if (!Number.isFinite(streak) || streak < BACKOFF_THRESHOLD) return 0;
  const doublings = Math.floor(streak) - BACKOFF_THRESHOLD;
  // 2^9 × 30 is already far above the cap; stop there instead of computing huge powers.
  return Math.min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** Math.min(doublings, 9));
}

/** When the backoff after the `streak`-th failure in a row (seen at `failedAt`) ends; null for none. */
export function backoffUntil(streak: number, failedAt: EpochMs): EpochMs | null {
  const s = backoffSeconds(streak);
  return s === 0 ? null : failedAt + s * 1000;
}

/**
 * May the account serve a request at `now`? Active, or rate-limited / over quota whose reset time
 * has passed (to the millisecond: it comes back by itself, with no extra margin), and not in a
 * backoff. A block without a reset time stays until a usage reading lifts it. Stored usage is
 * deliberately not consulted: it ranks accounts, it never refuses one before the upstream has said
 * no. The proxy filters candidates by this rule, and the balancer checks it for hard-affinity routes.
 */
export function isUsable(
  a: Pick<AccountSnapshot, "status" | "resetAt" | "cooldownUntil">,
  now: EpochMs,
): boolean {
  if (a.cooldownUntil !== null && a.cooldownUntil > now) return false;
  if (a.status === "active") return true;
  if (a.status === "rate_limited" || a.status === "quota_exceeded")
    return a.resetAt !== null && a.resetAt <= now;
  return false;
}

/**
 * Is the account back from a backoff (at least {@link BACKOFF_THRESHOLD} failures in a row, and
 * the `cooldownUntil` they set has passed) that no success has cleared yet? Such an account takes
 * one request at a time, a probe, until one has succeeded (`account.healthy` clears the streak
 * and the backoff); a failed probe backs it off again, longer.
 */
export function isProbing(
  a: Pick<AccountSnapshot, "cooldownUntil" | "failureStreak">,
  now: EpochMs,
): boolean {
  return a.failureStreak >= BACKOFF_THRESHOLD && a.cooldownUntil !== null && a.cooldownUntil <= now;
}

/** When an unusable account is expected back (its reset or backoff end), or null when not by itself. */
export function usableAgainAt(a: AccountSnapshot, now: EpochMs): EpochMs | null {
  let at: EpochMs | null = null;
  if ((a.status === "rate_limited" || a.status === "quota_exceeded") && a.resetAt !== null && a.resetAt > now)
    at = a.resetAt;
  else if (a.status !== "active" && a.status !== "rate_limited" && a.status !== "quota_exceeded") return null;
  if (a.cooldownUntil !== null && a.cooldownUntil > now) at = Math.max(at ?? 0, a.cooldownUntil);
  return at;
}

/** What `GET /api/accounts` shows next to an account's status. */
export interface AccountHealth {
  readonly accountId: string;
  /** End of the transient-failure backoff, or null when the account is not in one. */
  readonly backoffUntil: EpochMs | null;
  /** Transient failures in a row so far. */
  readonly failureStreak: number;
  /** Streams this process is serving on the account now. */
  readonly inFlight: number;
  /** Requests of this process waiting for a stream slot on the account. */
  readonly queued: number;
  /** Whether the balancer may choose the account right now. */
  readonly usable: boolean;
}

/**
 * The health summary of one account, from its snapshot and the lease counters: the one view both
 * the balancer and `GET /api/accounts` show.
 */
export function accountHealth(
  a: Pick<AccountSnapshot, "id" | "status" | "resetAt" | "cooldownUntil" | "failureStreak">,
  leases: { inFlight(accountId: string): number; queued?(accountId: string): number },
  now: EpochMs,
): AccountHealth {
  return {
    accountId: a.id,
    backoffUntil: a.cooldownUntil !== null && a.cooldownUntil > now ? a.cooldownUntil : null,
    failureStreak: a.failureStreak,
    inFlight: leases.inFlight(a.id),
    queued: leases.queued?.(a.id) ?? 0,
    usable: isUsable(a, now),
  };
}
