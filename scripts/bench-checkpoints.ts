/**
 * WAL checkpoints and commit time: `bun scripts/bench-checkpoints.ts [auto|off] [seconds]`.
 * A real SQLite store file written as the gateway writes under load: `BENCH_RATE` (default 2,000)
 * commits a second, each a synchronous `BEGIN IMMEDIATE` transaction on the store's connection
 * inserting `BENCH_ROWS` (default 1) row(s) with random keys (random index pages, like response
 * owners and reservations), in batches every 5 ms. `auto` keeps SQLite's own auto-checkpoint (it
 * runs inside the commit that crosses 1,000 pages); `off` starts the store's checkpoints
 * (`store.startCheckpoints`, src/runtime/bun/sqlite.ts) on the real clock, as a serving gateway does.
 *
 * Prints the commit-time distribution (p50, p99, p99.9, max), the event-loop stalls (how late each
 * 5 ms batch started: what a request in flight waits, including a checkpoint run between commits),
 * the largest `-wal` file seen and the checkpoint passes.
 *
 * @module
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { systemClock } from "../src/core/clock.ts";
import { openMigratedStore } from "../src/store/store.ts";
import { envNumber } from "./bench-env.ts";

const mode = process.argv[2] === "off" ? "off" : "auto";
const seconds = Number(process.argv[3] ?? 10);
const RATE = envNumber("BENCH_RATE", 2000);
const ROWS = envNumber("BENCH_ROWS", 1);
const BATCH_MS = 5;

const dir = mkdtempSync(join(tmpdir(), "codex-lb-bench-checkpoints-"));
const path = join(dir, "store.db");
const store = await openMigratedStore({ kind: "sqlite", path });
await sql`create table bench_rows (id text primary key, a integer not null, b text not null, c text not null)`.execute(
  store.db,
);
await sql`create index bench_rows_a on bench_rows (a)`.execute(store.db);
const cps =
  mode === "off"
    ? store.startCheckpoints(systemClock, { onError: (e) => console.error("checkpoint error:", e.message) })
    : null;
const exclusive = store.sqlite!.exclusive;

const commits: number[] = [];
const lags: number[] = [];
let maxWal = 0;
const filler = "x".repeat(300);
const perBatch = Math.max(1, Math.round((RATE * BATCH_MS) / 1000));
const cpu0 = process.cpuUsage();
const end = performance.now() + seconds * 1000;
let next = performance.now();
while (performance.now() < end) {
  next += BATCH_MS;
  const wait = next - performance.now();
  const asked = performance.now();
  await new Promise((r) => setTimeout(r, Math.max(0, wait)));
  lags.push(performance.now() - asked - Math.max(0, wait));
  if (performance.now() - next > 100) next = performance.now(); // do not catch up a long stall in one burst
  await exclusive((s) => {
    for (let i = 0; i < perBatch; i++) {
      const t = performance.now();
      s.immediate(() => {
        for (let j = 0; j < ROWS; j++)
          s.run("insert into bench_rows values (?, ?, ?, ?)", [
            crypto.randomUUID(),
            Math.floor(Math.random() * 1e9),
            filler,
            crypto.randomUUID(),
          ]);
      });
      commits.push(performance.now() - t);
    }
  });
  maxWal = Math.max(maxWal, statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0);
}
const cpu = process.cpuUsage(cpu0);
const stats = cps?.stats();
await store.close();
rmSync(dir, { recursive: true, force: true });

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(3);
};
const dist = (xs: number[]) =>
  `p50 ${q(xs, 0.5)} p99 ${q(xs, 0.99)} p99.9 ${q(xs, 0.999)} max ${q(xs, 1)} ms`;
console.log(`${mode}: ${commits.length} commits of ${ROWS} rows in ${seconds} s (asked ${RATE}/s)`);
console.log(`  CPU (all threads): ${((cpu.user + cpu.system) / commits.length).toFixed(1)} µs per commit`);
console.log(`  commit time:      ${dist(commits)}`);
console.log(`  event-loop stall: ${dist(lags)}`);
console.log(
  `  largest -wal: ${(maxWal / 1e6).toFixed(1)} MB${stats ? `; passes ${JSON.stringify(stats)}` : ""}`,
);
