import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { migrations } from "../../src/store/migrations/index.ts";
import { openMigratedStore, openStore, resolveStoreLocation } from "../../src/store/store.ts";

describe("store location", () => {
  const table: [string, string][] = [
    ["", "/data/store.db"],
    ["sqlite:/var/x.db", "/var/x.db"],
    ["sqlite:///var/x.db", "/var/x.db"],
    ["sqlite:rel/x.db", "/cwd/rel/x.db"],
    ["file:/var/y.db", "/var/y.db"],
    ["/abs/z.db", "/abs/z.db"],
    ["rel.db", "/cwd/rel.db"],
    ["sqlite::memory:", ":memory:"],
  ];
  for (const [url, path] of table) {
    test(`${JSON.stringify(url)} → ${path}`, () => {
      expect(resolveStoreLocation(url, "/data", "/cwd")).toEqual({ kind: "sqlite", path });
    });
  }
  test("an unsupported scheme is refused with what is supported", () => {
    expect(() => resolveStoreLocation("postgresql://u@h/db", "/data")).toThrow(
      /unsupported database scheme "postgresql".*SQLite/,
    );
  });
});

describe("SQLite store", () => {
  test("a new file gets WAL, foreign keys, busy timeout and every migration", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-store-"));
    const path = join(dir, "nested", "store.db");
    const store = await openMigratedStore({ kind: "sqlite", path });
    const pragma = async (name: string) =>
      Object.values((await sql.raw(`PRAGMA ${name}`).execute(store.db)).rows[0] as object)[0];
    expect(await pragma("journal_mode")).toBe("wal");
    expect(await pragma("foreign_keys")).toBe(1);
    expect(await pragma("busy_timeout")).toBe(30000);
    const applied = await store.db
      .selectFrom("kysely_migration" as never)
      .select("name" as never)
      .execute();
    expect(applied.map((r) => (r as { name: string }).name)).toEqual(Object.keys(migrations));
    expect(await store.ping()).toBe(true);
    const { statSync } = await import("node:fs");
    for (const f of [path, `${path}-wal`]) expect(statSync(f).mode & 0o777).toBe(0o600);
    await store.close();
    expect(await store.ping()).toBe(false);
    // Re-opening applies nothing new and keeps data.
    const again = openStore({ kind: "sqlite", path });
    const { results, error } = await again.migrate();
    expect(error).toBeUndefined();
    expect(results).toEqual([]);
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("foreign keys cascade: deleting an account deletes its events and keeps its request logs", async () => {
    const store = await openMigratedStore({ kind: "sqlite", path: ":memory:" });
    await store.db
      .insertInto("accounts")
      .values({ id: "a", codex_installation_id: "i", created_at: 1, updated_at: 1 })
      .execute();
    await store.db
      .insertInto("account_events")
      .values({ at: 1, account_id: "a", action: "account.pause", source: "admin" })
      .execute();
    await store.db
      .insertInto("request_logs")
      .values({
        requested_at: 1,
        request_id: "r",
        account_id: "a",
        endpoint: "/v1/responses",
        status: "success",
      })
      .execute();
    await store.db.deleteFrom("accounts").where("id", "=", "a").execute();
    expect(await store.db.selectFrom("account_events").selectAll().execute()).toEqual([]);
    const logs = await store.db.selectFrom("request_logs").select(["request_id", "account_id"]).execute();
    expect(logs).toEqual([{ request_id: "r", account_id: null }]);
    await store.close();
  });

  test("an event for an unknown account is refused by the foreign key", async () => {
    const store = await openMigratedStore({ kind: "sqlite", path: ":memory:" });
    await expect(
      store.db
        .insertInto("account_events")
        .values({ at: 1, account_id: "ghost", action: "x", source: "y" })
        .execute(),
    ).rejects.toThrow(/FOREIGN KEY/);
    await store.close();
  });

  test("migration names sort in the order they are listed", () => {
    const names = Object.keys(migrations);
    expect([...names].sort()).toEqual(names);
    for (const n of names) expect(n).toMatch(/^\d{4}_[a-z0-9_]+$/);
  });
});
