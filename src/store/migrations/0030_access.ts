import { type ColumnDefinitionBuilder, type Kysely, sql } from "kysely";
import { ddl } from "./ddl.ts";

const HOUR_MS = 3_600_000;

/** The upsert that adds (sign 1) or removes (sign -1) one request-log row `r` (NEW/OLD) to its hour bucket. */
function bucketUpsert(r: "NEW" | "OLD", sign: 1 | -1, target = ""): string {
  const s = sign === 1 ? "" : "-";
  const unpriced = (col: string) =>
    `${s}CASE WHEN ${r}.cost_usd IS NULL THEN coalesce(${r}.${col}, 0) ELSE 0 END`;
  return `INSERT INTO api_key_usage_hourly (api_key_id, hour, model, requests, input_tokens, cached_input_tokens,
      output_tokens, stored_cost_usd, unpriced_input_tokens, unpriced_cached_input_tokens, unpriced_output_tokens)
    VALUES (${r}.api_key_id, (${r}.requested_at / ${HOUR_MS}) * ${HOUR_MS}, coalesce(${r}.model, ''), ${s}1,
      ${s}coalesce(${r}.input_tokens, 0), ${s}coalesce(${r}.cached_input_tokens, 0), ${s}coalesce(${r}.output_tokens, 0),
      ${s}coalesce(${r}.cost_usd, 0), ${unpriced("input_tokens")}, ${unpriced("cached_input_tokens")},
      ${unpriced("output_tokens")})
    ON CONFLICT (api_key_id, hour, model) DO UPDATE SET
      requests = ${target}requests + excluded.requests,
      input_tokens = ${target}input_tokens + excluded.input_tokens,
      cached_input_tokens = ${target}cached_input_tokens + excluded.cached_input_tokens,
      output_tokens = ${target}output_tokens + excluded.output_tokens,
      stored_cost_usd = ${target}stored_cost_usd + excluded.stored_cost_usd,
      unpriced_input_tokens = ${target}unpriced_input_tokens + excluded.unpriced_input_tokens,
      unpriced_cached_input_tokens = ${target}unpriced_cached_input_tokens + excluded.unpriced_cached_input_tokens,
      unpriced_output_tokens = ${target}unpriced_output_tokens + excluded.unpriced_output_tokens;`;
}

/**
 * Access control:
 * - the admin credentials live in their own one-row table (never in the generic settings table,
 *   so no settings listing can ever show a password hash or a TOTP secret);
 * - API keys are looked up by their short prefix before the constant-time hash comparison;
 * - per-key usage is kept in hour buckets maintained by triggers on `request_logs` (insert, update,
 *   delete), so checking a monthly limit sums at most 720 small rows instead of every request log.
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

  const zero = (c: ColumnDefinitionBuilder) => c.notNull().defaultTo(0);
  await db.schema
    .createTable("api_key_usage_hourly")
    .addColumn("api_key_id", "text", (c) => c.notNull())
    .addColumn("hour", "bigint", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("requests", "integer", zero)
    .addColumn("input_tokens", "integer", zero)
    .addColumn("cached_input_tokens", "integer", zero)
    .addColumn("output_tokens", "integer", zero)
    .addColumn("stored_cost_usd", ddl(db).real, zero)
    .addColumn("unpriced_input_tokens", "integer", zero)
    .addColumn("unpriced_cached_input_tokens", "integer", zero)
    .addColumn("unpriced_output_tokens", "integer", zero)
    .addPrimaryKeyConstraint("pk_api_key_usage_hourly", ["api_key_id", "hour", "model"])
    .execute();
  if (ddl(db).dialect === "postgres") await createPostgresTriggers(db);
  else await createSqliteTriggers(db);
  // Rows logged before this migration.
  await sql
    .raw(`INSERT INTO api_key_usage_hourly SELECT api_key_id, (requested_at / ${HOUR_MS}) * ${HOUR_MS},
      coalesce(model, ''), count(*), coalesce(sum(input_tokens), 0), coalesce(sum(cached_input_tokens), 0),
      coalesce(sum(output_tokens), 0), coalesce(sum(cost_usd), 0),
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN input_tokens END), 0),
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN cached_input_tokens END), 0),
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN output_tokens END), 0)
      FROM request_logs WHERE api_key_id IS NOT NULL GROUP BY 1, 2, 3`)
    .execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time.
async function createSqliteTriggers(db: Kysely<any>): Promise<void> {
  await sql
    .raw(`CREATE TRIGGER trg_request_logs_usage_insert AFTER INSERT ON request_logs
      WHEN NEW.api_key_id IS NOT NULL BEGIN ${bucketUpsert("NEW", 1)} END`)
    .execute(db);
  await sql
    .raw(`CREATE TRIGGER trg_request_logs_usage_delete AFTER DELETE ON request_logs
      WHEN OLD.api_key_id IS NOT NULL BEGIN ${bucketUpsert("OLD", -1)} END`)
    .execute(db);
  await sql
    .raw(`CREATE TRIGGER trg_request_logs_usage_update_old AFTER UPDATE OF api_key_id, requested_at, model,
      input_tokens, cached_input_tokens, output_tokens, cost_usd ON request_logs
      WHEN OLD.api_key_id IS NOT NULL BEGIN ${bucketUpsert("OLD", -1)} END`)
    .execute(db);
  await sql
    .raw(`CREATE TRIGGER trg_request_logs_usage_update_new AFTER UPDATE OF api_key_id, requested_at, model,
      input_tokens, cached_input_tokens, output_tokens, cost_usd ON request_logs
      WHEN NEW.api_key_id IS NOT NULL BEGIN ${bucketUpsert("NEW", 1)} END`)
    .execute(db);
}

/** PostgreSQL: one row-level trigger function doing what the four SQLite triggers do. */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time.
async function createPostgresTriggers(db: Kysely<any>): Promise<void> {
  const t = "api_key_usage_hourly.";
  await sql
    .raw(`CREATE FUNCTION request_logs_usage() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.api_key_id IS NOT NULL THEN ${bucketUpsert("OLD", -1, t)} END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.api_key_id IS NOT NULL THEN ${bucketUpsert("NEW", 1, t)} END IF;
      RETURN NULL;
    END $$`)
    .execute(db);
  await sql
    .raw(`CREATE TRIGGER trg_request_logs_usage AFTER INSERT OR DELETE OR UPDATE OF api_key_id, requested_at,
      model, input_tokens, cached_input_tokens, output_tokens, cost_usd ON request_logs
      FOR EACH ROW EXECUTE FUNCTION request_logs_usage()`)
    .execute(db);
}
