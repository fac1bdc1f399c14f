/**
 * Domain types shared by the core, the store and plugins. Kept free of Elysia and Kysely.
 *
 * @module
 */

/** Every status an account can be in, in the order the dashboard lists them. */
export const accountStatuses = [
  "active",
  "rate_limited",
  "quota_exceeded",
  "paused",
  "reauth_required",
  "deactivated",
] as const;
export type AccountStatus = (typeof accountStatuses)[number];

export const routingPolicies = ["normal", "burn_first", "preserve"] as const;
export type RoutingPolicy = (typeof routingPolicies)[number];

/** Epoch milliseconds. Every time in the store and in events is one of these (UTC by construction). */
export type EpochMs = number;

/** One quota window as last seen (from `/wham/usage` or live response headers). */
export interface UsageWindow {
  readonly usedPercent: number;
  readonly windowMinutes: number | null;
  readonly resetAt: EpochMs | null;
}

/**
 * What a plugin sees of an account: no token, ever. `version` increases with every change the core
 * applies; actions decided from this snapshot are applied only if the version still matches.
 */
export interface AccountSnapshot {
  readonly id: string;
  readonly email: string | null;
  readonly chatgptAccountId: string | null;
  readonly planType: string | null;
  readonly status: AccountStatus;
  readonly statusReason: string | null;
  readonly resetAt: EpochMs | null;
  readonly cooldownUntil: EpochMs | null;
  readonly failureStreak: number;
  readonly routingPolicy: RoutingPolicy;
  readonly version: number;
  readonly primary: UsageWindow | null;
  readonly secondary: UsageWindow | null;
}

/** A usable upstream credential for one account. Never logged. */
export interface AccountCredentials {
  readonly accessToken: string;
  /** Sent upstream as `chatgpt-account-id`. */
  readonly chatgptAccountId: string | null;
  /** Sent upstream as `x-codex-installation-id`. */
  readonly installationId: string;
}
