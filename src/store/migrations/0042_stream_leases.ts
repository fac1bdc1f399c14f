import type { Kysely } from "kysely";

/**
 * `stream_leases`: one row per stream in flight when several replicas share the database, so the
 * per-account stream cap holds across them; a short expiry renewed by the replica that holds it.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("stream_leases")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("replica_id", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("idx_stream_leases_account")
    .on("stream_leases")
    .columns(["account_id", "expires_at"])
    .execute();
  await db.schema.createIndex("idx_stream_leases_replica").on("stream_leases").column("replica_id").execute();
}
