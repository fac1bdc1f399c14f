import { type Kysely, sql } from "kysely";

/**
 * `kind`: what a proxied request asked of the upstream — `compact` for a remote compaction (the
 * `/responses/compact` endpoints, or a Responses turn whose last input item is
 * `compaction_trigger`, which is how the Codex CLI compacts since remote compaction v2), else
 * `response`. Older rows become `response`, except those of the compact endpoints. Like every
 * request-log filter, `kind` has an index ending in the request time (compactions are rare: a
 * `kind=compact` page is read straight from it).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("request_logs")
    .addColumn("kind", "text", (c) => c.notNull().defaultTo(sql`'response'`))
    .execute();
  await db
    .updateTable("request_logs")
    .set({ kind: "compact" })
    .where("endpoint", "in", ["/backend-api/codex/responses/compact", "/v1/responses/compact"])
    .execute();
  await db.schema
    .createIndex("idx_logs_kind_time")
    .on("request_logs")
    .columns(["kind", "requested_at"])
    .execute();
}
