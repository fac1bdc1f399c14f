/**
 * Test fixtures for the balancer: account snapshots, a seeded random source, and helpers that put
 * accounts and usage into a real store.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { AccountSnapshot, UsageWindow } from "../../src/core/types.ts";
import type { Database } from "../../src/store/schema.ts";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);

export { account } from "../support/snapshot.ts";

/** A weekly window `usedPercent` used, resetting `resetInMs` after `now`. */
export function weekly(usedPercent: number, now = T0, resetInMs = 3 * DAY): UsageWindow {
  return { usedPercent, windowMinutes: 10080, resetAt: now + resetInMs };
}

/** A 5-hour window `usedPercent` used, resetting `resetInMs` after `now`. */
export function fiveHour(usedPercent: number, now = T0, resetInMs = 2 * HOUR): UsageWindow {
  return { usedPercent, windowMinutes: 300, resetAt: now + resetInMs };
}

/** mulberry32: a small deterministic PRNG, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counts how often each value occurs. */
export function tally(values: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** Inserts an account row (no tokens) into a real store. */
export async function insertAccount(
  db: Kysely<Database>,
  id: string,
  over: Partial<Database["accounts"]> & { plan_type?: string | null } = {},
  now = T0,
): Promise<void> {
  await db
    .insertInto("accounts")
    .values({
      id,
      chatgpt_account_id: `chatgpt-${id}`,
      chatgpt_user_id: `user-${id}`,
      email: `${id}@example.test`,
      alias: null,
      plan_type: "plus",
      codex_installation_id: crypto.randomUUID(),
      access_token_enc: null,
      refresh_token_enc: null,
      id_token_enc: null,
      access_token_expires_at: null,
      last_refresh_at: null,
      status_reason: null,
      reset_at: null,
      blocked_at: null,
      cooldown_until: null,
      created_at: now,
      updated_at: now,
      ...(over as object),
    })
    .execute();
}

/** Records a usage sample for one window of an account. */
export async function insertUsage(
  db: Kysely<Database>,
  accountId: string,
  window: "primary" | "secondary",
  w: UsageWindow,
  now = T0,
): Promise<void> {
  await db
    .insertInto("usage_snapshots")
    .values({
      account_id: accountId,
      recorded_at: now,
      window,
      used_percent: w.usedPercent,
      window_minutes: w.windowMinutes,
      reset_at: w.resetAt,
      credits_has: null,
      credits_unlimited: null,
      credits_balance: null,
    })
    .execute();
}

/**
 * The proxy's candidate rule (documented in the account.select event): active, or rate-limited /
 * over quota whose reset passed; not cooling down; not already tried by this request.
 */
export function candidatesOf(
  all: readonly AccountSnapshot[],
  now: number,
  excluded: readonly string[] = [],
): AccountSnapshot[] {
  return all.filter(
    (a) =>
      !excluded.includes(a.id) &&
      (a.cooldownUntil === null || a.cooldownUntil <= now) &&
      (a.status === "active" ||
        ((a.status === "rate_limited" || a.status === "quota_exceeded") && (a.resetAt ?? 0) <= now)),
  );
}
