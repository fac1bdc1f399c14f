import type { Kysely } from "kysely";

/**
 * Indexes for the request log's filters (`/api/request-logs` and the dashboard's Requests page):
 * each filter column followed by `requested_at`, so a filtered page is read newest-first straight
 * from the index (the row id breaks ties: it is the implicit last column of every SQLite index and
 * follows insertion order), and a lookup by request id is one probe. Account, API key, time and
 * response id already had theirs (0001).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex("idx_logs_model_time")
    .on("request_logs")
    .columns(["model", "requested_at"])
    .execute();
  await db.schema
    .createIndex("idx_logs_status_time")
    .on("request_logs")
    .columns(["status", "requested_at"])
    .execute();
  await db.schema
    .createIndex("idx_logs_endpoint_time")
    .on("request_logs")
    .columns(["endpoint", "requested_at"])
    .execute();
  await db.schema.createIndex("idx_logs_request_id").on("request_logs").column("request_id").execute();
}
