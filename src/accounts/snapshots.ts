/**
 * Reads accounts as {@link AccountSnapshot}s: what hooks and plugins see (no token, ever), with
 * the latest stored quota windows.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { AccountSnapshot, AccountStatus, RoutingPolicy, UsageWindow } from "../core/types.ts";
import type { AccountRow, Database } from "../store/schema.ts";

/** The columns a snapshot needs; token blobs are never selected here. */
export const snapshotColumns = [
  "id",
  "email",
  "chatgpt_account_id",
  "plan_type",
  "status",
  "status_reason",
  "reset_at",
  "cooldown_until",
  "failure_streak",
  "routing_policy",
  "version",
] as const satisfies readonly (keyof AccountRow)[];

type SnapshotRow = Pick<AccountRow, (typeof snapshotColumns)[number]>;

export function toSnapshot(
  row: SnapshotRow,
  windows: { primary?: UsageWindow | null; secondary?: UsageWindow | null } = {},
): AccountSnapshot {
  return Object.freeze({
    id: row.id,
    email: row.email,
    chatgptAccountId: row.chatgpt_account_id,
    planType: row.plan_type,
    status: row.status as AccountStatus,
    statusReason: row.status_reason,
    resetAt: row.reset_at === null ? null : Number(row.reset_at),
    cooldownUntil: row.cooldown_until === null ? null : Number(row.cooldown_until),
    failureStreak: row.failure_streak,
    routingPolicy: row.routing_policy as RoutingPolicy,
    version: row.version,
    primary: windows.primary ?? null,
    secondary: windows.secondary ?? null,
  });
}

/** Latest usage window per (account, window) for the given accounts, or all when `ids` is omitted. */
export async function latestWindows(
  db: Kysely<Database>,
  ids?: readonly string[],
): Promise<Map<string, { primary?: UsageWindow; secondary?: UsageWindow }>> {
  const out = new Map<string, { primary?: UsageWindow; secondary?: UsageWindow }>();
  if (ids && ids.length === 0) return out;
  let q = db
    .selectFrom("usage_snapshots as u")
    .select(["u.account_id", "u.window", "u.used_percent", "u.window_minutes", "u.reset_at"])
    .where(({ eb, selectFrom }) =>
      eb(
        "u.id",
        "=",
        selectFrom("usage_snapshots as l")
          .select((e) => e.fn.max("l.id").as("id"))
          .whereRef("l.account_id", "=", "u.account_id")
          .whereRef("l.window", "=", "u.window"),
      ),
    );
  if (ids) q = q.where("u.account_id", "in", ids);
  for (const r of await q.execute()) {
    const entry = out.get(r.account_id) ?? {};
    const w: UsageWindow = {
      usedPercent: r.used_percent,
      windowMinutes: r.window_minutes,
      resetAt: r.reset_at === null ? null : Number(r.reset_at),
    };
    if (r.window === "primary") entry.primary = w;
    else if (r.window === "secondary") entry.secondary = w;
    out.set(r.account_id, entry);
  }
  return out;
}

export async function listSnapshots(db: Kysely<Database>): Promise<AccountSnapshot[]> {
  const rows = await db
    .selectFrom("accounts")
    .select(snapshotColumns)
    .orderBy("created_at")
    .orderBy("id")
    .execute();
  const windows = await latestWindows(db);
  return rows.map((r) => toSnapshot(r, windows.get(r.id)));
}

export async function getSnapshot(db: Kysely<Database>, id: string): Promise<AccountSnapshot | null> {
  const row = await db.selectFrom("accounts").select(snapshotColumns).where("id", "=", id).executeTakeFirst();
  if (!row) return null;
  const windows = await latestWindows(db, [id]);
  return toSnapshot(row, windows.get(id));
}
