import { type Kysely, sql } from "kysely";
import { ddl } from "./ddl.ts";

/**
 * PostgreSQL: taking a stream slot (`stream_leases`, see src/cluster/stream-leases.ts) in one round
 * trip instead of a five-statement transaction: lock the account's slots (transaction-scoped
 * advisory lock), count the live ones, insert when under the cap. SQLite has no replicas: nothing.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  if (ddl(db).dialect !== "postgres") return;
  await sql
    .raw(`CREATE FUNCTION codex_lb_take_stream(p_id text, p_account text, p_replica text, p_now bigint,
      p_expires bigint, p_cap integer) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock(hashtext('codex-lb:streams:' || p_account));
      IF (SELECT count(*) FROM stream_leases WHERE account_id = p_account AND expires_at > p_now) >= p_cap THEN
        RETURN false;
      END IF;
      INSERT INTO stream_leases (id, account_id, replica_id, expires_at) VALUES (p_id, p_account, p_replica, p_expires);
      RETURN true;
    END $$`)
    .execute(db);
}
