import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { migrations } from "../../src/store/migrations/index.ts";
import {
  describeLocation,
  openMigratedStore,
  openStore,
  resolveStoreLocation,
} from "../../src/store/store.ts";

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
  test("postgres:// and postgresql:// URLs name a PostgreSQL database", () => {
    for (const url of ["postgres://u:p@db.internal:5432/lb", "postgresql://u@h/db?sslmode=require"])
      expect(resolveStoreLocation(url, "/data")).toEqual({ kind: "postgres", url });
  });
  test("the password never reaches the logs' description", () => {
    expect(describeLocation({ kind: "postgres", url: "postgres://lb:s3cret@h:5432/lb" })).toBe(
      "postgres://lb:***@h:5432/lb",
    );
  });
  test("an unsupported scheme is refused with what is supported", () => {
    expect(() => resolveStoreLocation("mysql://u@h/db", "/data")).toThrow(
      /unsupported database scheme "mysql".*SQLite.*PostgreSQL/,
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

  test("exclusive runs at once with no Kysely transaction open, and waits (in order) for an open one", async () => {
    const store = openStore({ kind: "sqlite", path: ":memory:" });
    await sql`create table t (n integer)`.execute(store.db);
    const sqlite = store.sqlite!;
    // No transaction open: the callback has run before the call returns.
    let ran = false;
    const first = sqlite.exclusive((s) => {
      ran = true;
      return s.run("insert into t (n) values (?)", [1]);
    });
    expect(ran).toBe(true);
    expect(await first).toBe(1);
    // A Kysely transaction is open: exclusive calls wait for its COMMIT, then run in their order.
    let inside!: () => void;
    const begun = new Promise<void>((r) => {
      inside = r;
    });
    let finish!: () => void;
    const gate = new Promise<void>((r) => {
      finish = r;
    });
    const trx = store.db.transaction().execute(async (tx) => {
      await sql`insert into t (n) values (2)`.execute(tx);
      inside();
      await gate;
      await sql`insert into t (n) values (3)`.execute(tx);
    });
    await begun;
    const order: string[] = [];
    const count = (s: { all(q: string, p: readonly unknown[]): Record<string, unknown>[] }) =>
      Number(s.all("select count(*) as c from t", [])[0]?.c);
    const a = sqlite.exclusive((s) => {
      order.push("a");
      return count(s);
    });
    const b = sqlite.exclusive((s) => {
      order.push("b");
      return count(s);
    });
    expect(order).toEqual([]);
    finish();
    await trx;
    expect(await a).toBe(3);
    expect(await b).toBe(3);
    expect(order).toEqual(["a", "b"]);
    // A throwing callback rejects the call; the connection stays usable.
    await expect(
      sqlite.exclusive(() => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await sqlite.exclusive(count)).toBe(3);
    await store.close();
  });

  test("a bulk transaction keeps statement journals in memory; the connection's other statements do not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-store-"));
    const store = openStore({ kind: "sqlite", path: join(dir, "store.db") });
    await sql`create table t (n integer primary key, v text)`.execute(store.db);
    const sqlite = store.sqlite!;
    const tempStore = (s: { all(q: string, p: readonly unknown[]): Record<string, unknown>[] }) =>
      Number(s.all("PRAGMA temp_store", [])[0]?.temp_store);
    // 0: the build's default (temporary files); 2: memory.
    expect(await sqlite.exclusive(tempStore)).toBe(0);
    const seen = await sqlite.exclusive((s) =>
      s.immediate(
        () => {
          s.run("insert into t (v) values (?), (?)", ["a", "b"]);
          return tempStore(s);
        },
        { bulk: true },
      ),
    );
    expect(seen).toBe(2);
    expect(await sqlite.exclusive((s) => s.immediate(() => tempStore(s)))).toBe(0);
    // After the transaction, and after one that rolled back, sorts and temporary tables go to files again.
    expect(await sqlite.exclusive(tempStore)).toBe(0);
    await expect(
      sqlite.exclusive((s) =>
        s.immediate(
          () => {
            s.run("insert into t (v) values (?)", ["c"]);
            throw new Error("boom");
          },
          { bulk: true },
        ),
      ),
    ).rejects.toThrow("boom");
    expect(await sqlite.exclusive(tempStore)).toBe(0);
    expect((await sql<{ c: number }>`select count(*) as c from t`.execute(store.db)).rows[0]?.c).toBe(2);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a transaction whose COMMIT fails is rolled back: the connection takes the next one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-store-"));
    const store = openStore({ kind: "sqlite", path: join(dir, "store.db") });
    await sql`create table p (id integer primary key)`.execute(store.db);
    await sql`create table c (id integer primary key, pid integer references p (id))`.execute(store.db);
    const sqlite = store.sqlite!;
    // A deferred foreign-key check fails at COMMIT (as a full disk can), which leaves SQLite's
    // transaction open; in a bulk transaction and in a plain one.
    for (const opts of [{ bulk: true }, undefined]) {
      await expect(
        sqlite.exclusive((s) =>
          s.immediate(() => {
            s.run("PRAGMA defer_foreign_keys = ON", []);
            s.run("insert into c (pid) values (?)", [42]);
          }, opts),
        ),
      ).rejects.toThrow("FOREIGN KEY constraint failed");
      expect(await sqlite.exclusive((s) => s.all("select count(*) as n from c", []))).toEqual([{ n: 0 }]);
      await sqlite.exclusive((s) => s.immediate(() => s.run("insert into p (id) values (?)", [1]), opts));
      expect((await sql<{ n: number }>`select count(*) as n from p`.execute(store.db)).rows).toEqual([
        { n: 1 },
      ]);
      await sql`delete from p`.execute(store.db);
    }
    expect(await sqlite.exclusive((s) => Number(s.all("PRAGMA temp_store", [])[0]?.temp_store))).toBe(0);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("migration names sort in the order they are listed", () => {
    const names = Object.keys(migrations);
    expect([...names].sort()).toEqual(names);
    for (const n of names) expect(n).toMatch(/^\d{4}_[a-z0-9_]+$/);
  });
});
