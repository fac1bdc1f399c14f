import { type Kysely, sql } from "kysely";

/**
 * How each proxied request travelled: `transport` is the client's side (`http` or `websocket`),
 * `upstream_transport` the side towards the ChatGPT backend (`http` or `websocket`; null when no
 * upstream call was made, e.g. a request refused before routing). Older rows were all HTTP.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("request_logs")
    .addColumn("transport", "text", (c) => c.notNull().defaultTo(sql`'http'`))
    .execute();
  await db.schema.alterTable("request_logs").addColumn("upstream_transport", "text").execute();
}
