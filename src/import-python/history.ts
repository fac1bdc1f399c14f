/**
 * Optional request-log history (`--with-history`): the Python store's `request_logs` rows become
 * ours, read page by page (never all at once) inside the import's transaction. Imported rows carry
 * `client = "python-import"`; a later import replaces them instead of adding them twice. Since
 * API-key usage is counted from the request logs, imported history also carries each key's usage
 * in its current limit windows over.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { openSqliteSnapshot } from "../store/foreign.ts";
import type { Database, NewRequestLogRow } from "../store/schema.ts";
import { pyDatetime } from "./plan.ts";

/** The `client` value of imported rows. */
export const IMPORTED_CLIENT = "python-import";
const PAGE = 2000;
/** Rows per insert statement (SQLite limits bound parameters per statement). */
const BATCH = 400;

const text = (v: unknown): string | null =>
  typeof v === "string" && v.trim() !== "" ? v.trim() : typeof v === "number" ? String(v) : null;
const int = (v: unknown): number | null => {
  const n =
    typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : typeof v === "string" ? Number(v) : NaN;
  return Number.isFinite(n) ? Math.round(n) : null;
};
const real = (v: unknown): number | null => {
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
};

function statusOf(r: Record<string, unknown>): string {
  const s = text(r.status)?.toLowerCase() ?? "";
  if (s === "success" || s === "ok" || s === "completed") return "success";
  if (s === "cancelled" || s === "canceled" || s === "aborted") return "cancelled";
  return "error";
}

/** One Python row as ours; null when it has no usable time. */
function mapRow(
  r: Record<string, unknown>,
  accountIdOf: ReadonlyMap<string, string>,
  keyIdOf: ReadonlyMap<string, string>,
): NewRequestLogRow | null {
  const at = pyDatetime(r.requested_at) ?? pyDatetime(r.created_at);
  if (at === null) return null;
  const micro = real(r.cost_microdollars);
  return {
    requested_at: at,
    request_id: text(r.request_id) ?? `py_${String(r.__rowid)}`,
    account_id: accountIdOf.get(text(r.account_id) ?? "") ?? null,
    api_key_id: keyIdOf.get(text(r.api_key_id) ?? "") ?? null,
    model: text(r.model),
    endpoint: text(r.endpoint) ?? text(r.request_path) ?? text(r.path) ?? "(python codex-lb)",
    client: IMPORTED_CLIENT,
    client_ip: null,
    status: statusOf(r),
    http_status: int(r.status_code) ?? int(r.http_status),
    error_code: text(r.error_code),
    error_message: text(r.error_message),
    input_tokens: int(r.input_tokens),
    cached_input_tokens: int(r.cached_input_tokens),
    output_tokens: int(r.output_tokens),
    reasoning_tokens: int(r.reasoning_tokens),
    cost_usd: real(r.cost_usd) ?? (micro === null ? null : micro / 1_000_000),
    latency_ms: int(r.latency_ms) ?? int(r.elapsed_ms),
    ttfb_ms: null,
    response_id: null,
    session_key: null,
    reasoning_effort: text(r.reasoning_effort),
  };
}

/**
 * Copies the Python `request_logs` into `trx` (replacing rows an earlier import brought).
 * Returns how many rows were imported and how many were left out (no usable time).
 */
export async function importHistory(
  trx: Kysely<Database>,
  storePath: string,
  accountIdOf: ReadonlyMap<string, string>,
  keyIdOf: ReadonlyMap<string, string>,
): Promise<{ imported: number; skipped: number }> {
  const db = openSqliteSnapshot(storePath);
  try {
    const has =
      db.all("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request_logs'").length > 0;
    if (!has) return { imported: 0, skipped: 0 };
    await trx.deleteFrom("request_logs").where("client", "=", IMPORTED_CLIENT).execute();
    let imported = 0;
    let skipped = 0;
    let after = 0;
    for (;;) {
      const page = db.all(
        "SELECT rowid AS __rowid, * FROM request_logs WHERE rowid > ? ORDER BY rowid LIMIT ?",
        after,
        PAGE,
      );
      if (page.length === 0) break;
      after = Number(page[page.length - 1]!.__rowid);
      const rows: NewRequestLogRow[] = [];
      for (const r of page) {
        const row = mapRow(r, accountIdOf, keyIdOf);
        if (row) rows.push(row);
        else skipped++;
      }
      for (let i = 0; i < rows.length; i += BATCH)
        await trx
          .insertInto("request_logs")
          .values(rows.slice(i, i + BATCH))
          .execute();
      imported += rows.length;
    }
    return { imported, skipped };
  } finally {
    db.close();
  }
}
