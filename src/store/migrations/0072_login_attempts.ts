import { type Kysely, sql } from "kysely";
import { ddl } from "./ddl.ts";

/**
 * Credential attempts counted in the store, so replicas on one PostgreSQL database share one
 * budget per client address (src/cluster/attempts.ts): a row per counted attempt, refunded (deleted)
 * when the credential proved right. On PostgreSQL one function takes the address's lock, forgets
 * attempts older than the window, and counts or refuses in one round trip. A single SQLite gateway
 * counts in memory; the table exists there too so both dialects keep one schema.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("login_attempts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("address", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("idx_login_attempts_address")
    .on("login_attempts")
    .columns(["address", "at"])
    .execute();
  if (ddl(db).dialect !== "postgres") return;
  // Returns null when the attempt was counted, else the time of the oldest attempt in the window.
  await sql
    .raw(`CREATE FUNCTION codex_lb_begin_attempt(p_id text, p_address text, p_now bigint, p_window bigint,
      p_max integer) RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE oldest bigint; n integer;
    BEGIN
      PERFORM pg_advisory_xact_lock(hashtext('codex-lb:attempts:' || p_address));
      DELETE FROM login_attempts WHERE address = p_address AND at <= p_now - p_window;
      SELECT count(*), min(at) INTO n, oldest FROM login_attempts WHERE address = p_address;
      IF n >= p_max THEN RETURN oldest; END IF;
      INSERT INTO login_attempts (id, address, at) VALUES (p_id, p_address, p_now);
      RETURN NULL;
    END $$`)
    .execute(db);
}
