import { type Kysely, sql } from "kysely";
import { ddl } from "./ddl.ts";

const HOUR_MS = 3_600_000;

/**
 * Retention: old request-log rows are pruned, but the per-key hour buckets they were summed into
 * are kept (usage aggregates outlive the rows). A delete normally subtracts a row from its bucket;
 * during a prune it must not. SQLite: a one-row table `retention_state` whose `pruning` flag the
 * pruner sets inside its delete transaction, checked by the delete trigger. PostgreSQL: the trigger
 * function skips the subtraction when the transaction set `codex_lb.pruning` to `on`.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen in time and must not follow today's Database type.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("retention_state")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("pruning", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("last_pruned_at", "bigint")
    .execute();
  await db.insertInto("retention_state").values({ id: 1, pruning: 0, last_pruned_at: null }).execute();
  if (ddl(db).dialect === "postgres") {
    // The same function as 0030's, with the DELETE subtraction skipped while pruning.
    const fn = await sql<{
      src: string;
    }>`SELECT pg_get_functiondef('request_logs_usage'::regproc) AS src`.execute(db);
    const src = fn.rows[0]?.src ?? "";
    const patched = src.replace(
      "IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.api_key_id IS NOT NULL THEN",
      "IF (TG_OP = 'UPDATE' OR (TG_OP = 'DELETE' AND current_setting('codex_lb.pruning', true) IS DISTINCT FROM 'on')) AND OLD.api_key_id IS NOT NULL THEN",
    );
    if (patched === src) throw new Error("request_logs_usage() is not the function 0030_access created");
    await sql.raw(patched).execute(db);
    return;
  }
  const sub = `INSERT INTO api_key_usage_hourly (api_key_id, hour, model, requests, input_tokens, cached_input_tokens,
      output_tokens, stored_cost_usd, unpriced_input_tokens, unpriced_cached_input_tokens, unpriced_output_tokens)
    VALUES (OLD.api_key_id, (OLD.requested_at / ${HOUR_MS}) * ${HOUR_MS}, coalesce(OLD.model, ''), -1,
      -coalesce(OLD.input_tokens, 0), -coalesce(OLD.cached_input_tokens, 0), -coalesce(OLD.output_tokens, 0),
      -coalesce(OLD.cost_usd, 0),
      -CASE WHEN OLD.cost_usd IS NULL THEN coalesce(OLD.input_tokens, 0) ELSE 0 END,
      -CASE WHEN OLD.cost_usd IS NULL THEN coalesce(OLD.cached_input_tokens, 0) ELSE 0 END,
      -CASE WHEN OLD.cost_usd IS NULL THEN coalesce(OLD.output_tokens, 0) ELSE 0 END)
    ON CONFLICT (api_key_id, hour, model) DO UPDATE SET
      requests = requests + excluded.requests,
      input_tokens = input_tokens + excluded.input_tokens,
      cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
      output_tokens = output_tokens + excluded.output_tokens,
      stored_cost_usd = stored_cost_usd + excluded.stored_cost_usd,
      unpriced_input_tokens = unpriced_input_tokens + excluded.unpriced_input_tokens,
      unpriced_cached_input_tokens = unpriced_cached_input_tokens + excluded.unpriced_cached_input_tokens,
      unpriced_output_tokens = unpriced_output_tokens + excluded.unpriced_output_tokens;`;
  await sql.raw("DROP TRIGGER trg_request_logs_usage_delete").execute(db);
  await sql
    .raw(`CREATE TRIGGER trg_request_logs_usage_delete AFTER DELETE ON request_logs
      WHEN OLD.api_key_id IS NOT NULL AND (SELECT pruning FROM retention_state WHERE id = 1) = 0
      BEGIN ${sub} END`)
    .execute(db);
}
