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
 * `BENCH_WAL_PAGES=1` also counts the pages the measured requests write: SQLite's auto-checkpoint
 * is turned off after the warm-up and the WAL emptied, and at the end every frame of the WAL is
 * charged to the table or index that owns its page at the end (`dbstat`; a page freed and reused
 * counts for its last owner, `?` for the free list). Prints WAL frames and commits per request
 * (exact), and frames per request by table and index (approximate, as said). Each frame is a
 * 4 KB write at commit (two syscalls) and a copy at the next checkpoint; a B-tree keyed by random
 * values (response owners) writes about one page per row once it outgrows a batch.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { envNumber } from "./bench-env.ts";

const root = resolve(process.argv[2] ?? ".");
const requests = Number(process.argv[3] ?? 20_000);
const perFlush = Number(process.argv[4] ?? 250);
const conc = envNumber("BENCH_CONC", 1);
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

const walPages = process.env.BENCH_WAL_PAGES === "1";
const sqlAll = (q: string) =>
  store.sqlite.exclusive((s: { all(q: string, p: unknown[]): Record<string, unknown>[] }) => s.all(q, []));
if (walPages) await sqlAll("PRAGMA wal_autocheckpoint = 0");
await run(3_000, 10_000_000);
if (walPages) await sqlAll("PRAGMA wal_checkpoint(TRUNCATE)");
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
if (walPages) {
  // WAL file: a 32-byte header, then frames of a 24-byte header (page number, and the database
  // size for a commit's last frame) and the page.
  const wal = readFileSync(join(dir, "store.db-wal"));
  const pageSize = wal.readUInt32BE(8);
  const owner = new Map<number, string>();
  for (const r of await sqlAll("SELECT name, pageno FROM dbstat"))
    owner.set(Number(r.pageno), String(r.name));
  const byName = new Map<string, number>();
  let frames = 0;
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    frames++;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
    const name = owner.get(wal.readUInt32BE(at)) ?? "?";
    byName.set(name, (byName.get(name) ?? 0) + 1);
  }
  const per = (n: number) => (n / requests).toFixed(3);
  console.log(
    `WAL: ${per(frames)} frames and ${per(commits)} commits per request; frames per request by table/index:`,
  );
  for (const [name, n] of [...byName].sort((a, b) => b[1] - a[1]))
    console.log(`  ${per(n).padStart(6)}  ${name}`);
}
await store.close();
rmSync(dir, { recursive: true, force: true });
