/**
 * What the admin API shows of an account (camelCase, never a token) and of its events.
 *
 * @module
 */
import { type Static, t } from "elysia";
import type { Kysely } from "kysely";
import { accountHealth } from "../core/health.ts";
import type { AccountStatus, EpochMs } from "../core/types.ts";
import type { Database } from "../store/schema.ts";
import { latestWindows, snapshotColumns } from "./snapshots.ts";

const Nullable = <T extends import("@sinclair/typebox").TSchema>(s: T) => t.Union([s, t.Null()]);

/** One quota window in the admin API. */
export const UsageWindowView = t.Object({
  usedPercent: t.Number(),
  windowMinutes: Nullable(t.Integer()),
  resetAt: Nullable(t.Integer({ description: "epoch milliseconds" })),
});

/** An account in the admin API (never a token). */
export const AccountView = t.Object({
  id: t.String(),
  email: Nullable(t.String()),
  chatgptAccountId: Nullable(t.String()),
  planType: Nullable(t.String()),
  status: t.String({
    description: "active, rate_limited, quota_exceeded, paused, reauth_required, deactivated",
  }),
  statusReason: Nullable(t.String()),
  resetAt: Nullable(t.Integer({ description: "epoch ms when a rate limit or quota block ends" })),
  lastRefreshAt: Nullable(t.Integer({ description: "epoch ms of the last token refresh or login" })),
  accessTokenExpiresAt: Nullable(t.Integer({ description: "epoch ms, from the access token's exp" })),
  usage: t.Object({ primary: Nullable(UsageWindowView), secondary: Nullable(UsageWindowView) }),
  routingPolicy: t.String({ description: "normal, burn_first or preserve (PATCH /api/accounts/{id})" }),
  health: t.Object(
    {
      usable: t.Boolean({ description: "Whether the balancer may choose the account right now" }),
      backoffUntil: Nullable(t.Integer({ description: "End of a transient-failure backoff (epoch ms)" })),
      failureStreak: t.Integer({ description: "Transient failures in a row" }),
      inFlight: t.Integer({ description: "Streams this process serves on the account now" }),
      queued: t.Integer({ description: "Requests waiting for a stream slot on the account" }),
    },
    { description: "Health next to the status: backoff and load" },
  ),
});
/** {@link AccountView} as a TypeScript type. */
export type AccountView = Static<typeof AccountView>;

/** One `account_events` row in the admin API. */
export const AccountEventView = t.Object({
  id: t.Integer(),
  at: t.Integer({ description: "epoch milliseconds" }),
  action: t.String(),
  fromStatus: Nullable(t.String()),
  toStatus: Nullable(t.String()),
  reason: Nullable(t.String()),
  source: t.String(),
  plugin: Nullable(t.String()),
  requestId: Nullable(t.String()),
  details: Nullable(t.String()),
});

const num = (v: number | bigint | null): number | null => (v === null ? null : Number(v));

/** The core's health summary (src/core/health.ts) without the id the listing already shows. */
function healthView(
  ...args: Parameters<typeof accountHealth>
): Omit<ReturnType<typeof accountHealth>, "accountId"> {
  const { accountId: _, ...health } = accountHealth(...args);
  return health;
}

/** Every account (or one), oldest first, with its latest usage windows. */
/** Live load of an account (the balancing plugin's leases); zero when no plugin provides them. */
export interface AccountLoad {
  inFlight(accountId: string): number;
  queued?(accountId: string): number;
}

export async function accountViews(
  db: Kysely<Database>,
  id: string | undefined,
  load: AccountLoad | undefined,
  now: EpochMs,
): Promise<AccountView[]> {
  load ??= { inFlight: () => 0 };
  let q = db
    .selectFrom("accounts")
    .select([...snapshotColumns, "last_refresh_at", "access_token_expires_at"])
    .orderBy("created_at")
    .orderBy("id");
  if (id !== undefined) q = q.where("id", "=", id);
  const rows = await q.execute();
  const windows = await latestWindows(db, id === undefined ? undefined : [id]);
  return rows.map((r) => ({
    id: r.id,
    email: r.email,
    chatgptAccountId: r.chatgpt_account_id,
    planType: r.plan_type,
    status: r.status,
    statusReason: r.status_reason,
    resetAt: num(r.reset_at),
    lastRefreshAt: num(r.last_refresh_at),
    accessTokenExpiresAt: num(r.access_token_expires_at),
    usage: { primary: windows.get(r.id)?.primary ?? null, secondary: windows.get(r.id)?.secondary ?? null },
    routingPolicy: r.routing_policy,
    health: healthView(
      {
        id: r.id,
        status: r.status as AccountStatus,
        resetAt: num(r.reset_at),
        cooldownUntil: num(r.cooldown_until),
        failureStreak: r.failure_streak,
      },
      load,
      now,
    ),
  }));
}

/** An account's events, newest first. */
/** How many status events an account has (for paging). */
export async function countAccountEvents(db: Kysely<Database>, id: string): Promise<number> {
  const row = await db
    .selectFrom("account_events")
    .where("account_id", "=", id)
    .select((e) => e.fn.countAll<number>().as("n"))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function accountEvents(db: Kysely<Database>, id: string, limit = 200, offset = 0) {
  const rows = await db
    .selectFrom("account_events")
    .selectAll()
    .where("account_id", "=", id)
    .orderBy("id", "desc")
    .limit(limit)
    .offset(offset)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    at: Number(r.at),
    action: r.action,
    fromStatus: r.from_status,
    toStatus: r.to_status,
    reason: r.reason,
    source: r.source,
    plugin: r.plugin,
    requestId: r.request_id,
    details: r.details,
  }));
}
