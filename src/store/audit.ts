/**
 * The audit trail's writer: one row in `audit_logs` per admin change and login. It lives with the
 * store so the action applier can write the row inside the change's own transaction.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { systemClock } from "../core/clock.ts";
import type { Database } from "./schema.ts";

export interface AuditEntry {
  /** Dotted verb, e.g. `api_key.created`, `firewall.entry_added`, `account.paused`. */
  readonly action: string;
  /** The client address that made the change (`infoOf(request).clientIp`). */
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
