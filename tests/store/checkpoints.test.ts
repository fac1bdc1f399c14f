/**
 * WAL checkpoints off the request path (src/runtime/bun/sqlite.ts `WalCheckpoints`), on a real
 * SQLite file and a FakeClock: commits never checkpoint (the database file does not change however
 * much is written), a check on the clock does (the rows appear in the database file), the `-wal`
 * file stays bounded through a long run that keeps writing while the passes run (the bulk on the
 * worker thread when the backlog is large), the worker closes again when not needed, a file over
 * the limit is truncated, and closing the store leaves every row in the database file and no log.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { FakeClock } from "../../src/core/clock.ts";
import {
  openSqliteImmutable,
  WORKER_AFTER_PASSES,
  WORKER_IDLE_PASSES,
  WORKER_IDLE_TICKS,
} from "../../src/runtime/bun/sqlite.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

const root = mkdtempSync(join(tmpdir(), "codex-lb-checkpoints-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const INTERVAL = 1000;
const PAGE = 4096;

async function fresh(name: string): Promise<{ store: Store; path: string }> {
  const path = join(root, name, "store.db");
  const store = await openMigratedStore({ kind: "sqlite", path });
  await sql`create table blobs (id integer primary key, b blob not null)`.execute(store.db);
  // Each test starts from an empty log (the migrations wrote one).
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(store.db);
  return { store, path };
}

/** Rows of `blobs` in the database file itself (the write-ahead log beside it is not read). */
function rowsInFile(path: string): number {
  const r = openSqliteImmutable(path);
  try {
    const tables = r.all("select name from sqlite_master where name = 'blobs'");
    return tables.length === 0 ? 0 : Number(r.all("select count(*) as n from blobs")[0]?.n);
  } finally {
    r.close();
  }
}

/** Writes `pages` pages of random bytes as `commits` commits. */
async function write(store: Store, pages: number, commits = 1): Promise<void> {
  const per = Math.ceil(pages / commits);
  for (let i = 0; i < commits; i++) {
    await sql`insert into blobs (b) select randomblob(${PAGE - 100}) from
      (with recursive c(x) as (select 1 union all select x + 1 from c where x < ${per}) select x from c)`.execute(
      store.db,
    );
  }
}

const walBytes = (path: string) => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);

describe("WAL checkpoints outside request commits", () => {
  test("commits never checkpoint; a check on the clock does", async () => {
    const { store, path } = await fresh("clock");
    const clock = new FakeClock();
    const cps = store.startCheckpoints(clock, { intervalMs: INTERVAL });
    expect(rowsInFile(path)).toBe(0); // the table is in the file, no row yet
    // 1,500 pages in 150 commits: SQLite's own auto-checkpoint (1,000 pages) would have run in one.
    await write(store, 1500, 150);
    expect(rowsInFile(path)).toBe(0);
    expect(walBytes(path)).toBeGreaterThan(1500 * PAGE);
    await clock.advance(INTERVAL - 1);
    await cps.settled();
    expect(rowsInFile(path)).toBe(0);
    await clock.advance(1);
    await cps.settled();
    expect(rowsInFile(path)).toBe(1500);
    expect(cps.stats().passes).toBe(1);
    // Nothing written since: the next check takes no pass.
    await clock.advance(INTERVAL);
    await cps.settled();
    expect(cps.stats().passes).toBe(1);
    await store.close();
  });

  test("a long write run keeps the -wal file bounded", async () => {
    const { store, path } = await fresh("long");
    const clock = new FakeClock();
    const maxWalBytes = 8 * 1024 * 1024;
    const cps = store.startCheckpoints(clock, { intervalMs: INTERVAL, maxWalBytes });
    const perInterval = 600; // pages, in 60 commits: over the worker's threshold
    let written = 0;
    let largest = 0;
    for (let i = 0; i < 40; i++) {
      await write(store, perInterval / 2, 30);
      await clock.advance(INTERVAL);
      // Writes go on while the worker's pass runs (the log cannot start over by itself then).
      await write(store, perInterval / 2, 30);
      written += perInterval;
      await cps.settled();
      largest = Math.max(largest, walBytes(path));
    }
    await clock.advance(INTERVAL);
    await cps.settled();
    expect(rowsInFile(path)).toBe(written);
    // 24,000 pages (about 98 MB) went through a log that never held much more than the limit.
    expect(largest).toBeLessThan(maxWalBytes + 2 * perInterval * (PAGE + 24));
    const { passes, workerPasses, truncations } = cps.stats();
    // One a check (the last check finds nothing when the worker's last pass took in every write).
    expect(passes).toBeGreaterThanOrEqual(40);
    // Every backlog was large: after the first few (a burst, for all they knew), the worker did the bulk.
    expect(workerPasses).toBe(passes - WORKER_AFTER_PASSES);
    // The log started over, near half the limit, after the worker caught up: no truncation needed.
    expect(truncations).toBe(0);
    await store.close();
  });

  test("the worker closes after small passes, or after checks without writes", async () => {
    const { store } = await fresh("idle");
    const clock = new FakeClock();
    const cps = store.startCheckpoints(clock, { intervalMs: INTERVAL });
    const pass = async (pages: number) => {
      if (pages > 0) await write(store, pages, 10);
      await clock.advance(INTERVAL);
      await cps.settled();
    };
    // A small backlog: the writer's own pass.
    await pass(20);
    expect(cps.stats()).toMatchObject({ passes: 1, workerPasses: 0, worker: false });
    // A burst of large ones: still the writer's own.
    for (let i = 0; i < WORKER_AFTER_PASSES; i++) await pass(600);
    expect(cps.stats()).toMatchObject({ passes: 1 + WORKER_AFTER_PASSES, workerPasses: 0, worker: false });
    // One more: the worker's, and it stays open for small ones.
    await pass(600);
    const opened = 2 + WORKER_AFTER_PASSES;
    expect(cps.stats()).toMatchObject({ passes: opened, workerPasses: 1, worker: true });
    for (let i = 1; i < WORKER_IDLE_PASSES; i++) await pass(20);
    expect(cps.stats().worker).toBe(true);
    await pass(20);
    expect(cps.stats()).toMatchObject({ workerPasses: 1 + WORKER_IDLE_PASSES, worker: false });
    // Small backlogs are the writer's own again.
    await pass(20);
    expect(cps.stats()).toMatchObject({
      passes: opened + WORKER_IDLE_PASSES + 1,
      workerPasses: 1 + WORKER_IDLE_PASSES,
    });
    // Back on the worker, then nothing written.
    for (let i = 0; i <= WORKER_AFTER_PASSES; i++) await pass(600);
    expect(cps.stats().worker).toBe(true);
    for (let i = 1; i < WORKER_IDLE_TICKS; i++) await pass(0);
    expect(cps.stats().worker).toBe(true);
    await pass(0);
    expect(cps.stats().worker).toBe(false);
    await store.close();
  });

  test("a -wal file over the limit is truncated", async () => {
    const { store, path } = await fresh("limit");
    const clock = new FakeClock();
    const cps = store.startCheckpoints(clock, { intervalMs: INTERVAL, maxWalBytes: 2 * 1024 * 1024 });
    await write(store, 100, 10); // about 0.4 MB: checkpointed, the file kept for reuse
    await clock.advance(INTERVAL);
    await cps.settled();
    expect(walBytes(path)).toBeGreaterThan(100 * PAGE);
    expect(cps.stats().truncations).toBe(0);
    await write(store, 600, 10); // about 2.5 MB: over the limit
    await clock.advance(INTERVAL);
    await cps.settled();
    expect(cps.stats().truncations).toBe(1);
    expect(walBytes(path)).toBe(0);
    expect(rowsInFile(path)).toBe(700);
    await store.close();
  });

  test("a worker thread that cannot be opened leaves the passes on the connection, without retrying it", async () => {
    const { store, path } = await fresh("no-worker");
    const clock = new FakeClock();
    const errors: Error[] = [];
    let opens = 0;
    const cps = store.startCheckpoints(clock, {
      intervalMs: INTERVAL,
      onError: (e) => errors.push(e),
      openWorker: () => {
        opens++;
        throw new Error("no threads");
      },
    });
    const large = WORKER_AFTER_PASSES + 3;
    for (let i = 0; i < large; i++) {
      await write(store, 600, 20);
      await clock.advance(INTERVAL);
      await cps.settled();
      // Every pass (the failed worker's one too) checkpointed on the connection.
      expect(rowsInFile(path)).toBe(600 * (i + 1));
    }
    expect(opens).toBe(1);
    expect(errors.map((e) => e.message)).toEqual(["no threads"]);
    expect(cps.stats()).toMatchObject({ passes: large, workerPasses: 0, worker: false });
    await store.close();
  });

  test("closing the store leaves every row in the database file and no log", async () => {
    const { store, path } = await fresh("close");
    const clock = new FakeClock();
    const cps = store.startCheckpoints(clock, { intervalMs: INTERVAL });
    // Enough for the worker: it is running when the store closes.
    const large = WORKER_AFTER_PASSES + 1;
    for (let i = 0; i < large; i++) {
      await write(store, 600, 20);
      await clock.advance(INTERVAL);
      await cps.settled();
    }
    expect(cps.stats()).toMatchObject({ passes: large, workerPasses: 1, worker: true });
    await write(store, 300, 30);
    expect(rowsInFile(path)).toBe(600 * large);
    await store.close();
    expect(walBytes(path)).toBe(0);
    expect(rowsInFile(path)).toBe(600 * large + 300);
    // Stopped: the clock runs no more passes.
    await clock.advance(10 * INTERVAL);
    expect(cps.stats().passes).toBe(large);
  });

  test("an in-memory store has nothing to checkpoint", async () => {
    const store = await openMigratedStore({ kind: "sqlite", path: ":memory:" });
    const clock = new FakeClock();
    const cps = store.startCheckpoints(clock, { intervalMs: INTERVAL });
    await sql`create table t (x integer)`.execute(store.db);
    await clock.advance(INTERVAL);
    await cps.settled();
    expect(cps.stats().passes).toBe(0);
    await store.close();
  });
});
