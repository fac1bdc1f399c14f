import type { Kysely } from "kysely";

/**
 * Several gateways on one database (see src/cluster/):
 * - `cluster_replicas`: one row per running gateway, its heartbeat (GET /api/replicas);
 * - `cluster_leases`: named leases with an expiry; `leader` is held by the replica that runs the
 *   once-only background work, and lapses within seconds when its holder dies;
 * - `refresh_claims`: at most one token refresh per account in flight across replicas, keyed by a
 *   hash of the refresh token it uses (the token generation); a failed refresh leaves its outcome
 *   here for a few seconds so other replicas report it instead of re-sending a used token.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("cluster_replicas")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("version", "text", (c) => c.notNull())
    .addColumn("started_at", "bigint", (c) => c.notNull())
    .addColumn("heartbeat_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("idx_cluster_replicas_heartbeat")
    .on("cluster_replicas")
    .column("heartbeat_at")
    .execute();
  await db.schema
    .createTable("cluster_leases")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("holder", "text", (c) => c.notNull())
    .addColumn("acquired_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("refresh_claims")
    .addColumn("account_id", "text", (c) => c.primaryKey().references("accounts.id").onDelete("cascade"))
    .addColumn("token_hash", "text", (c) => c.notNull())
    .addColumn("holder", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("failure", "text")
    .execute();
}
