import type { Kysely } from "kysely";

/**
 * `accounts.last_selected_at` was never written: round-robin order is kept in the balancing
 * plugin's memory so a proxied request does not write the store. A column nobody writes only
 * misleads plugin authors, so it goes.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("accounts").dropColumn("last_selected_at").execute();
}
