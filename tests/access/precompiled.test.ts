import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { precompiled } from "../../src/access/api-keys/precompiled.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-precompiled-"));
  store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("precompiled queries", () => {
  test("built once per shape, then bound to each call's arguments; constants in the query kept", async () => {
    const db = store.db;
    let builds = 0;
    const select = (id: string, since: number) =>
      precompiled(db, "test:settings", [id, since], (a) => {
        builds++;
        return db
          .selectFrom("api_key_reservations")
          .select("id")
          .where("api_key_id", "=", a[0] as string)
          .where("created_at", ">=", a[1] as number)
          .where("settled", "=", 0) // a constant: not an argument
          .limit(5);
      });
    const q1 = select("key-a", 10);
    const q2 = select("key-b", 20);
    expect(builds).toBe(1);
    expect(q2.sql).toBe(q1.sql);
    expect(q1.parameters).toEqual(["key-a", 10, 0, 5]);
    expect(q2.parameters).toEqual(["key-b", 20, 0, 5]);
    // The same parameters a query built anew has.
    const fresh = db
      .selectFrom("api_key_reservations")
      .select("id")
      .where("api_key_id", "=", "key-b")
      .where("created_at", ">=", 20)
      .where("settled", "=", 0)
      .limit(5)
      .compile();
    expect(q2.sql).toBe(fresh.sql);
    expect(q2.parameters).toEqual(fresh.parameters);
    expect((await db.executeQuery(q2)).rows).toEqual([]);
  });

  test("a different shape is compiled on its own", () => {
    const db = store.db;
    const q = precompiled(db, "test:other", ["x"], (a) =>
      db
        .selectFrom("api_keys")
        .select("id")
        .where("id", "=", a[0] as string),
    );
    expect(q.sql).toContain("api_keys");
    expect(q.parameters).toEqual(["x"]);
  });
});
