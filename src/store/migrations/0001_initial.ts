import type { Kysely } from "kysely";
import { ddl } from "./ddl.ts";

/** The first schema: every table of the foundation, accounts, proxy, balancing and access issues. */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  const t = ddl(db);
  await db.schema
    .createTable("accounts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("chatgpt_account_id", "text")
    .addColumn("chatgpt_user_id", "text")
    .addColumn("email", "text")
    .addColumn("alias", "text")
    .addColumn("plan_type", "text")
    .addColumn("routing_policy", "text", (c) => c.notNull().defaultTo("normal"))
    .addColumn("codex_installation_id", "text", (c) => c.notNull())
    .addColumn("access_token_enc", t.blob)
    .addColumn("refresh_token_enc", t.blob)
    .addColumn("id_token_enc", t.blob)
    .addColumn("access_token_expires_at", "bigint")
    .addColumn("last_refresh_at", "bigint")
    .addColumn("status", "text", (c) => c.notNull().defaultTo("active"))
    .addColumn("status_reason", "text")
    .addColumn("reset_at", "bigint")
    .addColumn("blocked_at", "bigint")
    .addColumn("cooldown_until", "bigint")
    .addColumn("failure_streak", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("last_selected_at", "bigint")
    .addColumn("version", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("idx_accounts_email").on("accounts").column("email").execute();
  await db.schema
    .createIndex("idx_accounts_identity")
    .on("accounts")
    .columns(["chatgpt_account_id", "chatgpt_user_id"])
    .execute();

  await db.schema
    .createTable("account_events")
    .addColumn("id", t.serialId, t.serialIdDef)
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id").onDelete("cascade"))
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("from_status", "text")
    .addColumn("to_status", "text")
    .addColumn("reason", "text")
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("plugin", "text")
    .addColumn("request_id", "text")
    .addColumn("details", "text")
    .execute();
  await db.schema
    .createIndex("idx_account_events_account_at")
    .on("account_events")
    .columns(["account_id", "at"])
    .execute();

  await db.schema
    .createTable("usage_snapshots")
    .addColumn("id", t.serialId, t.serialIdDef)
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id").onDelete("cascade"))
    .addColumn("recorded_at", "bigint", (c) => c.notNull())
    .addColumn("window", "text", (c) => c.notNull())
    .addColumn("used_percent", t.real, (c) => c.notNull())
    .addColumn("window_minutes", "integer")
    .addColumn("reset_at", "bigint")
    .addColumn("credits_has", "integer")
    .addColumn("credits_unlimited", "integer")
    .addColumn("credits_balance", t.real)
    .execute();
  await db.schema
    .createIndex("idx_usage_account_window_time")
    .on("usage_snapshots")
    .columns(["account_id", "window", "recorded_at"])
    .execute();

  await db.schema
    .createTable("request_logs")
    .addColumn("id", t.serialId, t.serialIdDef)
    .addColumn("requested_at", "bigint", (c) => c.notNull())
    .addColumn("request_id", "text", (c) => c.notNull())
    .addColumn("account_id", "text", (c) => c.references("accounts.id").onDelete("set null"))
    .addColumn("api_key_id", "text")
    .addColumn("model", "text")
    .addColumn("endpoint", "text", (c) => c.notNull())
    .addColumn("client", "text")
    .addColumn("client_ip", "text")
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("http_status", "integer")
    .addColumn("error_code", "text")
    .addColumn("error_message", "text")
    .addColumn("input_tokens", "integer")
    .addColumn("cached_input_tokens", "integer")
    .addColumn("output_tokens", "integer")
    .addColumn("reasoning_tokens", "integer")
    .addColumn("cost_usd", t.real)
    .addColumn("latency_ms", "integer")
    .addColumn("ttfb_ms", "integer")
    .addColumn("response_id", "text")
    .addColumn("session_key", "text")
    .addColumn("reasoning_effort", "text")
    .execute();
  await db.schema.createIndex("idx_logs_time").on("request_logs").columns(["requested_at", "id"]).execute();
  await db.schema
    .createIndex("idx_logs_account_time")
    .on("request_logs")
    .columns(["account_id", "requested_at"])
    .execute();
  await db.schema
    .createIndex("idx_logs_key_time")
    .on("request_logs")
    .columns(["api_key_id", "requested_at"])
    .execute();
  await db.schema.createIndex("idx_logs_response_id").on("request_logs").column("response_id").execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("key_hash", "text", (c) => c.notNull().unique())
    .addColumn("key_prefix", "text", (c) => c.notNull())
    .addColumn("is_active", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("expires_at", "bigint")
    .addColumn("allowed_models", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("last_used_at", "bigint")
    .execute();

  await db.schema
    .createTable("api_key_limits")
    .addColumn("id", t.serialId, t.serialIdDef)
    .addColumn("api_key_id", "text", (c) => c.notNull().references("api_keys.id").onDelete("cascade"))
    .addColumn("limit_type", "text", (c) => c.notNull())
    .addColumn("limit_window", "text", (c) => c.notNull())
    .addColumn("max_value", t.real, (c) => c.notNull())
    .execute();
  await db.schema.createIndex("idx_api_key_limits_key").on("api_key_limits").column("api_key_id").execute();

  await db.schema
    .createTable("settings")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("sticky_sessions")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id").onDelete("cascade"))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("idx_sticky_account").on("sticky_sessions").column("account_id").execute();
  await db.schema.createIndex("idx_sticky_expires").on("sticky_sessions").column("expires_at").execute();

  await db.schema
    .createTable("firewall_allowlist")
    .addColumn("entry", "text", (c) => c.primaryKey())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("admin_sessions")
    .addColumn("id_hash", "text", (c) => c.primaryKey())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_seen_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("client_ip", "text")
    .execute();

  await db.schema
    .createTable("audit_logs")
    .addColumn("id", t.serialId, t.serialIdDef)
    .addColumn("at", "bigint", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("actor_ip", "text")
    .addColumn("request_id", "text")
    .addColumn("details", "text")
    .execute();
  await db.schema.createIndex("idx_audit_at").on("audit_logs").column("at").execute();
}
