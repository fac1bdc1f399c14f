import { type Kysely, sql } from "kysely";
import { ddl } from "./ddl.ts";

const OWNER_UPSERT = `INSERT INTO response_owners (response_id, account_id, created_at)
      VALUES (NEW.response_id, NEW.account_id, NEW.requested_at)
      ON CONFLICT (response_id) DO UPDATE SET account_id = excluded.account_id, created_at = excluded.created_at;`;

/**
 * Which account produced each upstream response, for `previous_response_id` routing, in a table of
 * its own (filled by a trigger on every request-log insert, pruned by the log writer after
 * `CODEX_LB_RESPONSE_OWNER_TTL_SECONDS`) instead of a random index over every request-log row,
 * whose insert cost grew with the log table. Owners already in the logs are copied over (the
 * latest row per response id, as the lookup chose).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("response_owners")
    .addColumn("response_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("idx_response_owners_created")
    .on("response_owners")
    .column("created_at")
    .execute();
  await sql
    .raw(`INSERT INTO response_owners (response_id, account_id, created_at)
      SELECT response_id, account_id, requested_at FROM request_logs WHERE id IN (
        SELECT max(id) FROM request_logs WHERE response_id IS NOT NULL AND account_id IS NOT NULL
        GROUP BY response_id)`)
    .execute(db);
  if (ddl(db).dialect === "postgres") {
    await sql
      .raw(`CREATE FUNCTION request_logs_response_owner() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.response_id IS NOT NULL AND NEW.account_id IS NOT NULL THEN ${OWNER_UPSERT} END IF;
        RETURN NULL;
      END $$`)
      .execute(db);
    await sql
      .raw(`CREATE TRIGGER trg_request_logs_response_owner AFTER INSERT ON request_logs
      FOR EACH ROW EXECUTE FUNCTION request_logs_response_owner()`)
      .execute(db);
  } else {
    await sql
      .raw(`CREATE TRIGGER trg_request_logs_response_owner AFTER INSERT ON request_logs
      WHEN NEW.response_id IS NOT NULL AND NEW.account_id IS NOT NULL BEGIN ${OWNER_UPSERT} END`)
      .execute(db);
  }
  await db.schema.dropIndex("idx_logs_response_id").execute();
}
