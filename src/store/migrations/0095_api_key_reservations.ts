import type { Kysely } from "kysely";
import { ddl } from "./ddl.ts";

/**
 * API-key limit reservations (src/access/api-keys/reservations.ts): one row per keyed request in
 * flight or finished but not yet in `request_logs`, so limits count it even across a crash.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  const t = ddl(db);
  await db.schema
    .createTable("api_key_reservations")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("api_key_id", "text", (c) => c.notNull().references("api_keys.id").onDelete("cascade"))
    .addColumn("request_id", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("settled", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cached_input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("output_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cost_usd", t.real, (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex("api_key_reservations_key_time")
    .on("api_key_reservations")
    .columns(["api_key_id", "created_at"])
    .execute();
}
