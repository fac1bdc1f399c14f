/**
 * The store work of keyed requests as the gateway does it, against a checkout (this one by
 * default): `bun scripts/bench-reservation-flow.ts [checkout] [requests] [rowsPerFlush]`.
 * Each request holds its reservation (`LimitReservations.hold`, one group-commit batch), its log
 * row goes to the gateway's `RequestLogWriter` (which settles the reservation), and every
 * `rowsPerFlush` rows (default 250, about one 250 ms flush at 1,000 requests/s) the writer flushes
 * and the written rows' reservations are dropped — wired as src/app/app.ts wires them, so the
 * reservations held between flushes build up as under load. Rows carry random `resp_…` ids, an
 * account and a key with a daily limit. `BENCH_CONC=64` runs 64 requests at a time (one batch holds
 * many). Prints CPU and wall µs per request, and the CPU of the holds alone. Run it in two
 * checkouts alternately to compare them.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(process.argv[2] ?? ".");
const requests = Number(process.argv[3] ?? 20_000);
const perFlush = Number(process.argv[4] ?? 250);
const conc = Number(process.env.BENCH_CONC ?? 1);
const { createApiKey } = await import(`${root}/src/access/api-keys/repository.ts`);
const { LimitReservations } = await import(`${root}/src/access/api-keys/reservations.ts`);
const { RequestLogWriter } = await import(`${root}/src/request-logs/writer.ts`);
const { openMigratedStore } = await import(`${root}/src/store/store.ts`);
const { insertAccount } = await import(`${root}/tests/balancing/fixtures.ts`);

const dir = mkdtempSync(join(tmpdir(), "codex-lb-bench-flow-"));
const store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
const t0 = Date.now();
await insertAccount(store.db, "acc");
const { record } = await createApiKey(
  store.db,
  { name: "bench", limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1e15 }] },
  t0 - 3_600_000,
);
const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
const reservations = new LimitReservations(store.db, { warn: () => {} }, undefined, store.sqlite);
const writer = new RequestLogWriter(store.db, { error: (o: object, m: string) => console.error(m, o) }, 1e9, {
  sqlite: store.sqlite,
});
writer.onWritten((rows: unknown[]) => void reservations.rowsWritten(rows));
writer.onAdded((row: unknown) => reservations.rowAdded(row));

const hex = () => crypto.randomUUID().replaceAll("-", "");
const row = (i: number, now: number) => ({
  requested_at: now,
  request_id: `req-${i}-${hex()}`,
  account_id: "acc",
  api_key_id: key.id,
  model: "gpt-5.2",
  endpoint: "/v1/responses",
  client: "bench",
  client_ip: "127.0.0.1",
  status: "success",
  http_status: 200,
  input_tokens: 12,
  cached_input_tokens: 0,
  output_tokens: 30,
  reasoning_tokens: 0,
  latency_ms: 3,
  ttfb_ms: 1,
  response_id: `resp_${hex()}${hex()}`,
});
const turn = () => new Promise<void>((r) => setImmediate(r));
let holdCpu = 0;

async function run(n: number, offset: number): Promise<void> {
  let next = 0;
  let done = 0;
  const one = async () => {
    while (next < n) {
      const i = next++;
      const now = t0 + offset + i;
      const r = row(offset + i, now);
      const c = process.cpuUsage();
      await reservations.hold(
        key,
        { requestId: r.request_id, model: "gpt-5.2", payload: { input: "hi" } },
        now,
      );
      const d = process.cpuUsage(c);
      holdCpu += d.user + d.system;
      writer.add(r);
      await turn();
      if (++done % perFlush === 0) await writer.flush();
    }
  };
  await Promise.all(Array.from({ length: conc }, one));
  await writer.flush();
}

await run(3_000, 10_000_000);
holdCpu = 0;
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
await run(requests, 20_000_000);
const cpu = process.cpuUsage(cpu0);
const wall = performance.now() - wall0;
console.log(
  `${root}: ${requests} keyed requests, ${conc} at a time, a flush every ${perFlush} rows: ` +
    `${((cpu.user + cpu.system) / requests).toFixed(1)} µs CPU and ${((wall * 1000) / requests).toFixed(1)} µs wall per request` +
    (conc === 1 ? `; holds ${(holdCpu / requests).toFixed(1)} µs CPU` : ""),
);
await store.close();
rmSync(dir, { recursive: true, force: true });
