/**
 * API-key limit reservation benchmark: the store work of one keyed request with a limit — reserve
 * (`LimitReservations.hold`), settle with the log row (`rowAdded`), drop once the row is written
 * (`rowsWritten`, in batches like the log writer's flushes) — against a SQLite store whose key
 * (created 29 days ago, with a daily, a weekly and a monthly limit) has `N` logged requests spread
 * over those 29 days, so its windows hold up to 696 hour buckets. One request at a time, so each
 * reservation is a group-commit batch of its own. Prints CPU µs per request (process CPU time,
 * user + system) and wall µs. Usage: `bun run scripts/bench-reservations.ts [requests] [loggedRows]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiKey } from "../src/access/api-keys/repository.ts";
import { LimitReservations } from "../src/access/api-keys/reservations.ts";
import type { NewRequestLogRow } from "../src/store/schema.ts";
import { openMigratedStore } from "../src/store/store.ts";

const requests = Math.min(Number(process.argv[2] ?? 20_000), 1_000_000);
const logged = Math.min(Number(process.argv[3] ?? 10_000), 1_000_000);
const flushEvery = 16;
const dir = mkdtempSync(join(tmpdir(), "codex-lb-bench-reservations-"));
const store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
const t0 = Date.now();
const { record } = await createApiKey(
  store.db,
  {
    name: "bench",
    limits: [
      { limitType: "total_tokens", limitWindow: "daily", maxValue: 1e15 },
      { limitType: "cost_usd", limitWindow: "weekly", maxValue: 1e15 },
      { limitType: "output_tokens", limitWindow: "monthly", maxValue: 1e15 },
    ],
  },
  t0 - 29 * 24 * 3_600_000,
);
const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
const silent = { warn: () => {}, info: () => {} };
// BENCH_KYSELY=1: the reservations through Kysely (as on PostgreSQL) instead of synchronous SQLite.
const reservations = new LimitReservations(
  store.db,
  silent,
  undefined,
  process.env.BENCH_KYSELY === "1" ? undefined : store.sqlite,
);

function row(i: number, now: number): NewRequestLogRow {
  return {
    request_id: `req-${i}`,
    api_key_id: key.id,
    requested_at: now,
    account_id: null,
    model: "gpt-5.1",
    endpoint: "/v1/responses",
    client: null,
    client_ip: null,
    status: "success",
    http_status: 200,
    error_code: null,
    error_message: null,
    reasoning_tokens: null,
    cost_usd: null,
    latency_ms: 10,
    ttfb_ms: 5,
    response_id: null,
    session_key: null,
    reasoning_effort: null,
    input_tokens: 120,
    cached_input_tokens: 0,
    output_tokens: 40,
  };
}

// Logged usage in the window (the hour buckets the triggers keep).
for (let i = 0; i < logged; i += 1000) {
  const rows = [];
  for (let j = i; j < Math.min(logged, i + 1000); j++)
    rows.push(row(-1 - j, t0 - 60_000 - (j % (29 * 24)) * 3_600_000));
  await store.db.insertInto("request_logs").values(rows).execute();
}

const phases = { hold: 0, insert: 0, release: 0 };
function cpuSince(c: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(c);
  return d.user + d.system;
}

async function run(n: number, offset: number): Promise<void> {
  let pending: NewRequestLogRow[] = [];
  for (let i = 0; i < n; i++) {
    const now = t0 + offset + i;
    const r = row(offset + i, now);
    const c0 = process.cpuUsage();
    await reservations.hold(
      key,
      { requestId: r.request_id, model: "gpt-5.1", payload: { input: "hi" } },
      now,
    );
    phases.hold += cpuSince(c0);
    reservations.rowAdded(r);
    pending.push(r);
    if (pending.length === flushEvery) {
      const c1 = process.cpuUsage();
      await store.db.insertInto("request_logs").values(pending).execute();
      phases.insert += cpuSince(c1);
      const c2 = process.cpuUsage();
      await reservations.rowsWritten(pending);
      phases.release += cpuSince(c2);
      pending = [];
    }
  }
}

await run(Math.min(2_000, requests), 10_000_000); // warm-up
phases.hold = phases.insert = phases.release = 0;
const cpu0 = process.cpuUsage();
const w0 = performance.now();
await run(requests, 20_000_000);
const wall = performance.now() - w0;
const cpu = process.cpuUsage(cpu0);
const left = await store.db
  .selectFrom("api_key_reservations")
  .select((eb) => eb.fn.countAll<number>().as("n"))
  .executeTakeFirstOrThrow();
console.log(
  `reservations: ${requests} requests, ${logged} logged rows in window: ` +
    `${((cpu.user + cpu.system) / requests).toFixed(1)} µs CPU/request ` +
    `(${(cpu.user / requests).toFixed(1)} user), ${((wall * 1000) / requests).toFixed(1)} µs wall/request ` +
    `(includes the log-row insert of the bench itself); per request: hold ${(phases.hold / requests).toFixed(1)} µs, ` +
    `release ${(phases.release / requests).toFixed(1)} µs, bench's log insert ${(phases.insert / requests).toFixed(1)} µs ` +
    `(settle: the rest); ${Number(left.n)} reservations left`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
