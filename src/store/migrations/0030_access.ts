import type { Kysely } from "kysely";

/**
 * Access control: the admin credentials live in their own one-row table (never in the generic
 * settings table, so no settings listing can ever show a password hash or a TOTP secret), and API
 * keys are looked up by their short prefix before the constant-time hash comparison.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("admin_credentials")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("password_hash", "text")
    .addColumn("totp_secret", "text")
    .addColumn("totp_pending_secret", "text")
    .addColumn("totp_last_step", "bigint")
    .addColumn("recovery_codes", "text")
    .addColumn("bootstrap_token_hash", "text")
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("idx_api_keys_prefix").on("api_keys").column("key_prefix").execute();
  await db.schema
    .createIndex("idx_admin_sessions_expires")
    .on("admin_sessions")
    .column("expires_at")
    .execute();
}
