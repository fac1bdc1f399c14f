import type { Kysely } from "kysely";

/**
 * `queue_ms`: how long a proxied request waited for a stream slot on its account(s) before the
 * upstream call (shown in the dashboard's request details next to time to first byte and total).
 * Null for older rows and for requests that never reached an account.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("request_logs").addColumn("queue_ms", "integer").execute();
}
