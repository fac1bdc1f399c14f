/**
 * `bun run scripts/bench-prune.ts [ROWS]`: the cost of retention on a big store, and whether the
 * store stays the same size under steady load. In a temporary SQLite store it writes ROWS request-log
 * rows (default 1,000,000, half of them with an API key so the usage triggers run) spread over 60
 * days, prunes everything older than 30 days and reports: rows deleted, total time, the longest
 * single batch (the longest a request's write could wait), and the file size. Then it writes the
 * same number of rows again ("the next month") and prunes again: with free pages reused, the file
 * stays flat instead of growing.
 *
 * @module
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { systemClock } from "../src/core/clock.ts";
import { pruneOnce } from "../src/retention/pruner.ts";
import { openMigratedStore } from "../src/store/store.ts";

const ROWS = Number(process.argv[2] ?? 1_000_000);
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), "codex-lb-prune-"));
const path = join(dir, "store.db");
const store = await openMigratedStore({ kind: "sqlite", path });
const size = () => {
  const wal = (() => {
    try {
      return statSync(`${path}-wal`).size;
    } catch {
      return 0;
    }
  })();
  return statSync(path).size + wal;
};
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

await store.db
  .insertInto("api_keys")
  .values({
    id: "bench-key",
    name: "bench",
    key_hash: "x",
    key_prefix: "sk-clb-bench",
    is_active: 1,
    expires_at: null,
    allowed_models: null,
    created_at: 0,
    updated_at: 0,
    last_used_at: null,
  })
  .execute();

/** Writes `n` rows spread evenly over the 60 days before `end`, in transactions of 5,000. */
async function fill(n: number, end: number): Promise<number> {
  const t0 = performance.now();
  const CHUNK = 5000;
  const PER_INSERT = 500;
  for (let i = 0; i < n; i += CHUNK) {
    await store.db.transaction().execute(async (trx) => {
      for (let j = i; j < Math.min(n, i + CHUNK); j += PER_INSERT) {
        const rows = [];
        for (let k = j; k < Math.min(n, j + PER_INSERT); k++)
          rows.push({
            requested_at: end - Math.floor(((n - k) / n) * 60 * DAY),
            request_id: `req-${end}-${k}`,
            account_id: null,
            api_key_id: k % 2 === 0 ? "bench-key" : null,
            model: "gpt-5.2",
            endpoint: "/v1/responses",
            client: "bench",
            client_ip: "127.0.0.1",
            status: "success",
            http_status: 200,
            error_code: null,
            error_message: null,
            input_tokens: 1200,
            cached_input_tokens: 300,
            output_tokens: 400,
            reasoning_tokens: 0,
            cost_usd: 0.004,
            latency_ms: 900,
            ttfb_ms: 300,
            response_id: `resp_${k}`,
            session_key: null,
            reasoning_effort: null,
          });
        await trx.insertInto("request_logs").values(rows).execute();
      }
    });
  }
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(store.db);
  return performance.now() - t0;
}

const policy = { requestLogDays: 30, auditDays: 365, usageDays: 730 };
const now = systemClock.now();
console.log(`writing ${ROWS.toLocaleString()} request-log rows over 60 days…`);
const fillMs = await fill(ROWS, now);
const before = size();
console.log(`written in ${(fillMs / 1000).toFixed(1)} s; store ${mb(before)}`);

for (const [round, at] of [
  [1, now],
  [2, now + 30 * DAY],
] as const) {
  if (round === 2) {
    console.log(`round 2: the next 30 days' ${(ROWS / 2).toLocaleString()} rows, then prune again…`);
    await fill(ROWS / 2, at);
  }
  const r = await pruneOnce(store.db, "sqlite", at, policy);
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(store.db);
  const left = await store.db
    .selectFrom("request_logs")
    .select((e) => e.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  const buckets = await store.db
    .selectFrom("api_key_usage_hourly")
    .select((e) => e.fn.sum<number>("requests").as("n"))
    .executeTakeFirstOrThrow();
  console.log(
    `round ${round}: pruned ${r.requestLogs.toLocaleString()} rows in ${(r.ms / 1000).toFixed(1)} s ` +
      `(${r.batches} batches, longest ${r.maxBatchMs} ms); ${Number(left.n).toLocaleString()} rows left; ` +
      `usage buckets still count ${Number(buckets.n).toLocaleString()} requests; store ${mb(size())}`,
  );
}
await store.close();
rmSync(dir, { recursive: true, force: true });
