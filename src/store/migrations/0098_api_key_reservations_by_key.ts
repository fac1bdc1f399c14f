import { type Kysely, sql } from "kysely";
import { ddl } from "./ddl.ts";

/**
 * SQLite: `api_key_reservations` keyed by what reads it — `(api_key_id, created_at, id)`, a
 * `WITHOUT ROWID` table — instead of a rowid table with a unique index on `id` and an index on
 * `(api_key_id, created_at)`: a reservation's insert, settle and delete change one B-tree instead
 * of three (a hold commits on the request's path), and a key's window is one range of it. The
 * statements find a reservation by key, creation time and id. The reservations are copied over.
 * PostgreSQL gets the same primary key in place of the one on `id` (which then no longer needs the
 * index on `(api_key_id, created_at)`); its rows stay where they are.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  if (ddl(db).dialect === "postgres") {
    await sql`ALTER TABLE api_key_reservations DROP CONSTRAINT api_key_reservations_pkey`.execute(db);
    await sql`ALTER TABLE api_key_reservations ADD CONSTRAINT pk_api_key_reservations PRIMARY KEY (api_key_id, created_at, id)`.execute(
      db,
    );
    await db.schema.dropIndex("api_key_reservations_key_time").execute();
    return;
  }
  await db.schema
    .createTable("api_key_reservations_by_key")
    .addColumn("id", "text", (c) => c.notNull())
    .addColumn("api_key_id", "text", (c) => c.notNull().references("api_keys.id").onDelete("cascade"))
    .addColumn("request_id", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("settled", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cached_input_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("output_tokens", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("cost_usd", ddl(db).real, (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("pk_api_key_reservations", ["api_key_id", "created_at", "id"])
    .modifyEnd(sql`without rowid`)
    .execute();
  const columns =
    "id, api_key_id, request_id, model, created_at, settled, input_tokens, cached_input_tokens, output_tokens, cost_usd";
  await sql
    .raw(`INSERT INTO api_key_reservations_by_key (${columns}) SELECT ${columns} FROM api_key_reservations`)
    .execute(db);
  await db.schema.dropTable("api_key_reservations").execute();
  await db.schema.alterTable("api_key_reservations_by_key").renameTo("api_key_reservations").execute();
}
