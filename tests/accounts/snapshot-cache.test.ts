import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { SnapshotCache } from "../../src/accounts/snapshot-cache.ts";
import { listSnapshots } from "../../src/accounts/snapshots.ts";
import type { AccountSnapshot } from "../../src/core/types.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";
import { insertAccount, insertUsage, T0, weekly } from "../balancing/fixtures.ts";

let dir: string;
let path: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-snapshot-cache-"));
  path = join(dir, "store.db");
  store = await openMigratedStore({ kind: "sqlite", path });
  await insertAccount(store.db, "a");
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The gateway's SQLite cache (stamp of the account tables), checked at every call (TTL 0) so each
 * `list()` decides between the kept list and a new read; counts the reads.
 */
function sqliteCache() {
  let reads = 0;
  const sqlite = store.sqlite!;
  const cache = new SnapshotCache(
    async () => {
      reads++;
      return listSnapshots(store.db);
    },
    0,
    () => sqlite.exclusive((s) => s.watchStamp("accounts")),
  );
  return { cache, reads: () => reads };
}

const statusOf = (list: readonly AccountSnapshot[], id: string) => list.find((a) => a.id === id)?.status;

/** Runs `sql` on the file from another process (its own connection), as a CLI command would. */
async function inOtherProcess(sql: string): Promise<void> {
  const code = `import { Database } from "bun:sqlite";
const db = new Database(${JSON.stringify(path)});
db.exec("PRAGMA busy_timeout = 30000");
db.exec(${JSON.stringify(sql)});
db.close();`;
  const proc = Bun.spawn([process.execPath, "-e", code], { stderr: "pipe" });
  const exit = await proc.exited;
  expect(await new Response(proc.stderr).text()).toBe("");
  expect(exit).toBe(0);
}

describe("on SQLite the account snapshots are read again only when what they are read from changed", () => {
  test("nothing written: the list is kept, however often it is checked", async () => {
    const { cache, reads } = sqliteCache();
    const first = await cache.list();
    expect(statusOf(first, "a")).toBe("active");
    for (let i = 0; i < 5; i++) expect(await cache.list()).toBe(first);
    expect(reads()).toBe(1);
  });

  test("a write to other tables (request logs) keeps the list", async () => {
    const { cache, reads } = sqliteCache();
    const first = await cache.list();
    await store.db
      .insertInto("request_logs")
      .values({
        requested_at: T0,
        request_id: "r1",
        account_id: "a",
        endpoint: "/v1/responses",
        status: "success",
      })
      .execute();
    expect(await cache.list()).toBe(first);
    expect(reads()).toBe(1);
  });

  test("an account changed on the store's connection without telling the cache is seen at the next check", async () => {
    const { cache, reads } = sqliteCache();
    expect(statusOf(await cache.list(), "a")).toBe("active");
    await store.db.updateTable("accounts").set({ status: "paused" }).where("id", "=", "a").execute();
    expect(statusOf(await cache.list(), "a")).toBe("paused");
    await store.db.updateTable("accounts").set({ status: "active" }).where("id", "=", "a").execute();
    expect(statusOf(await cache.list(), "a")).toBe("active");
    expect(reads()).toBe(3);
  });

  test("an account changed by raw SQL naming its table in upper case on the store's connection is seen at the next check", async () => {
    const { cache, reads } = sqliteCache();
    expect(statusOf(await cache.list(), "a")).toBe("active");
    // SQLite's table names are case-insensitive: this writes `accounts`.
    await sql`UPDATE ACCOUNTS SET status = 'paused' WHERE id = 'a'`.execute(store.db);
    expect(statusOf(await cache.list(), "a")).toBe("paused");
    await store.sqlite!.exclusive((s) =>
      s.run(`UPDATE "Accounts" SET status = 'active' WHERE id = ?`, ["a"]),
    );
    expect(statusOf(await cache.list(), "a")).toBe("active");
    expect(reads()).toBe(3);
  });

  test("a usage window recorded on the store's connection is seen at the next check", async () => {
    const { cache } = sqliteCache();
    expect((await cache.list()).find((x) => x.id === "a")?.secondary?.usedPercent).not.toBe(42);
    await insertUsage(store.db, "a", "secondary", weekly(42));
    expect((await cache.list()).find((x) => x.id === "a")?.secondary?.usedPercent).toBe(42);
  });

  test("an account changed or added by another process is seen at the next check", async () => {
    const { cache } = sqliteCache();
    expect(statusOf(await cache.list(), "a")).toBe("active");
    await inOtherProcess("UPDATE accounts SET status = 'paused' WHERE id = 'a'");
    expect(statusOf(await cache.list(), "a")).toBe("paused");
    await inOtherProcess(
      "INSERT INTO accounts (id, chatgpt_account_id, chatgpt_user_id, email, plan_type, codex_installation_id, created_at, updated_at) " +
        `SELECT 'b', 'chatgpt-b', 'user-b', 'b@example.test', plan_type, 'inst-b', created_at, updated_at FROM accounts WHERE id = 'a'`,
    );
    const list = await cache.list();
    expect(list.map((x) => x.id)).toEqual(["a", "b"]);
    expect(statusOf(list, "a")).toBe("paused");
  });

  test("invalidate() reads again even when nothing was written", async () => {
    const { cache, reads } = sqliteCache();
    await cache.list();
    cache.invalidate();
    await cache.list();
    expect(reads()).toBe(2);
  });
});

describe("without a stamp (PostgreSQL) the list is read again once its time is up", () => {
  test("TTL 0: every call reads", async () => {
    let reads = 0;
    const cache = new SnapshotCache(async () => {
      reads++;
      return listSnapshots(store.db);
    }, 0);
    await cache.list();
    await cache.list();
    expect(reads).toBe(2);
  });
});
