/**
 * Account health as the balancer sees it: the per-account health summary the accounts listing
 * shows. The rules it builds on (backoff arithmetic, usability) are the core's `src/core/health.ts`;
 * this plugin emits `account.healthy` after a success, which clears a backoff.
 *
 * @module
 */
import { type AccountSnapshot, type EpochMs, isUsable } from "../../src/plugin-api.ts";

// The rules themselves are the core's (src/core/health.ts); re-exported for the plugin's callers.
export {
  BACKOFF_BASE_SECONDS,
  BACKOFF_MAX_SECONDS,
  BACKOFF_THRESHOLD,
  backoffSeconds,
  backoffUntil,
  isUsable,
  usableAgainAt,
} from "../../src/plugin-api.ts";

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

/** The health summary of one account, from its snapshot and the lease counters. */
export function accountHealth(
  a: AccountSnapshot,
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
