/**
 * `bun run scripts/bench-request-logs.ts [rows]`: how fast `GET /api/request-logs` pages and filters
 * with 1,000,000 rows (default) in the SQLite store, and how fast the dashboard's aggregates
 * (`/api/overview`, `/api/usage/report`) answer. A gateway runs in-process on 127.0.0.1 with a
 * fresh data dir; the rows (28 days, 20 accounts, 10 API keys, 5 models, 3 endpoints, 5 % errors)
 * are written straight into its store file in one transaction. Prints p50/p95/max milliseconds of
 * each query over HTTP (client included).
 *
 * @module
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { startGateway } from "../tests/support/gateway.ts";

const ROWS = Number(process.argv[2] ?? 1_000_000);
const RUNS = 30;

const gw = await startGateway({ env: { CODEX_LB_LOG_LEVEL: "warn" } });
const now = gw.running.gateway.clock();
const DAY = 86_400_000;

// Deterministic pseudo-random data (a small LCG; the benchmark must not depend on luck).
let seed = 42;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
const accounts = Array.from({ length: 20 }, (_, i) => `acct-${i}`);
const keys = [null, ...Array.from({ length: 10 }, (_, i) => `key-${i}`)];
const models = ["gpt-5.2", "gpt-5.2-codex", "gpt-5.4", "gpt-5.4-mini", "gpt-5.5"];
const endpoints = ["/v1/responses", "/v1/chat/completions", "/backend-api/codex/responses"];

const t0 = performance.now();
const raw = new Database(join(gw.dataDir, "store.db"));
raw.exec("PRAGMA busy_timeout = 10000");
const insert = raw.prepare(
  `INSERT INTO request_logs (requested_at, request_id, account_id, api_key_id, model, endpoint, client,
   client_ip, status, http_status, error_code, error_message, input_tokens, cached_input_tokens,
   output_tokens, reasoning_tokens, cost_usd, latency_ms, ttfb_ms, response_id, session_key, reasoning_effort)
   VALUES (?, ?, ?, ?, ?, ?, 'bench', '127.0.0.1', ?, ?, ?, NULL, ?, ?, ?, 0, NULL, ?, ?, NULL, NULL, NULL)`,
);
let probeId = "";
raw.transaction(() => {
  for (let i = 0; i < ROWS; i++) {
    const r = rnd();
    const status = r < 0.95 ? "success" : r < 0.99 ? "error" : "cancelled";
    const requestId = crypto.randomUUID();
    if (i === Math.floor(ROWS / 3)) probeId = requestId;
    const ttfb = 100 + Math.floor(rnd() * 900);
    insert.run(
      now - Math.floor((1 - i / ROWS) * 28 * DAY),
      requestId,
      pick(accounts),
      pick(keys),
      pick(models),
      pick(endpoints),
      status,
      status === "success" ? 200 : status === "error" ? 502 : null,
      status === "error" ? "upstream_error" : null,
      Math.floor(rnd() * 5000),
      Math.floor(rnd() * 1000),
      Math.floor(rnd() * 2000),
      ttfb + Math.floor(rnd() * 20_000),
      ttfb,
    );
  }
})();
raw.exec("ANALYZE");
raw.close();
console.log(
  `inserted ${ROWS.toLocaleString("en-US")} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

async function measure(name: string, path: string | ((run: number) => string), runs = RUNS): Promise<void> {
  const times: number[] = [];
  let status = 0;
  let total = 0;
  for (let i = 0; i < runs + 2; i++) {
    const t = performance.now();
    const res = await fetch(`${gw.url}${typeof path === "string" ? path : path(i)}`);
    const body = (await res.json()) as { total?: number };
    if (i >= 2) times.push(performance.now() - t);
    status = res.status;
    total = body.total ?? 0;
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(1);
  console.log(
    `| ${name.padEnd(34)} | ${String(status).padStart(3)} | ${total.toLocaleString("en-US").padStart(9)} | ${q(0.5).padStart(7)} | ${q(0.95).padStart(7)} | ${times.at(-1)!.toFixed(1).padStart(7)} |`,
  );
}

const day = (d: number) => new Date(now - d * DAY).toISOString();
console.log("| query                              | http |  matched  | p50 ms  | p95 ms  | max ms  |");
console.log("|------------------------------------|------|-----------|---------|---------|---------|");
try {
  await measure("newest 50", "/api/request-logs?limit=50");
  await measure("page 100 (offset 4,950)", "/api/request-logs?limit=50&offset=4950");
  await measure("page 2,000 (offset 99,950)", "/api/request-logs?limit=50&offset=99950");
  await measure("by account", "/api/request-logs?accountId=acct-7");
  await measure("by API key", "/api/request-logs?apiKeyId=key-3");
  await measure("by model", "/api/request-logs?model=gpt-5.4-mini");
  await measure("status=error", "/api/request-logs?status=error");
  await measure("by endpoint", "/api/request-logs?endpoint=/v1/chat/completions");
  await measure("request id lookup", `/api/request-logs?requestId=${probeId}`);
  await measure("last 24 h", `/api/request-logs?since=${day(1)}`);
  await measure(
    "account + error + 7 days",
    `/api/request-logs?accountId=acct-3&status=error&since=${day(7)}`,
  );
  await measure("model + key + 2 days", `/api/request-logs?model=gpt-5.2&apiKeyId=key-1&since=${day(2)}`);
  await measure("overview (today)", `/api/overview?since=${now - DAY}`, 10);
  // A different time zone per run: the server keeps a report 30 s, this measures computing it.
  await measure(
    "usage report (28 days, uncached)",
    (i) => `/api/usage/report?days=28&tzOffsetMinutes=${i}`,
    5,
  );
} finally {
  await gw.stop();
}
