/**
 * The audit trail: one row in `audit_logs` per admin change (API keys, accounts, settings, firewall,
 * password, TOTP) and per login. It lives with the store so every change writes its row inside the
 * change's own transaction (the action applier, the feature stores).
 *
 * @module
 */
import type { Kysely } from "kysely";
import { systemClock } from "../core/clock.ts";
import type { Database } from "./schema.ts";

export interface AuditEntry {
  /** Dotted verb, e.g. `api_key.created`, `firewall.entry_added`, `account.paused`. */
  readonly action: string;
  /** The client address that made the change (`info.clientIp`, see src/core/request-info.ts). */
  readonly actorIp?: string | null;
  readonly requestId?: string | null;
  /** Plain facts about the change (ids, field names); never a secret. */
  readonly details?: Readonly<Record<string, unknown>> | null;
  /** Epoch ms; defaults to now. */
  readonly at?: number;
}

/** Writes one audit row. Pass a transaction as `db` to make it part of the change it records. */
export async function audit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await db
    .insertInto("audit_logs")
    .values({
      at: entry.at ?? systemClock.now(),
      action: entry.action,
      actor_ip: entry.actorIp ?? null,
      request_id: entry.requestId ?? null,
      details: entry.details ? JSON.stringify(entry.details) : null,
    })
    .execute();
}

/**
 * The audit row of a change, given to the store method that makes it: written in the change's own
 * transaction, so the trail never disagrees with the store (no row, no change). A function gets the
 * change's result (e.g. a generated id); null means nothing changed and no row is written.
 */
export type AuditOf<T> = AuditEntry | ((result: T) => AuditEntry | null);

/** Runs `fn` in a transaction, or in the caller's when `db` already is one (Kysely cannot nest them). */
export function inTransaction<T>(
  db: Kysely<Database>,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return db.isTransaction ? fn(db) : db.transaction().execute(fn);
}

/** Writes `entry` (for `result`) with `trx`; nothing when there is no entry. */
export async function auditIn<T>(
  trx: Kysely<Database>,
  entry: AuditOf<T> | undefined,
  result: T,
): Promise<void> {
  const row = typeof entry === "function" ? entry(result) : entry;
  if (row) await audit(trx, row);
}

/** Runs `change` and writes its audit row in one transaction: when the row fails, the change is undone. */
export function audited<T>(
  db: Kysely<Database>,
  change: (trx: Kysely<Database>) => Promise<T>,
  entry: AuditOf<NoInfer<T>> | undefined,
): Promise<T> {
  return inTransaction(db, async (trx) => {
    const result = await change(trx);
    await auditIn(trx, entry, result);
    return result;
  });
}

/** Shortcut for routes: the actor address and request id of a request. */
export function auditContext(info: { clientIp: string | null; requestId: string }): {
  actorIp: string | null;
  requestId: string;
} {
  return { actorIp: info.clientIp, requestId: info.requestId };
}
