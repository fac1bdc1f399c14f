/**
 * The store suite that runs against both dialects: SQLite and a real PostgreSQL server. The same
 * migrations must give the same schema and the same behaviour (foreign keys, usage triggers,
 * numbers coming back as numbers, blobs as bytes), and migrating twice at once must be safe.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Migrator, sql } from "kysely";
import { bundledMigrations, migrations } from "../../src/store/migrations/index.ts";
import { openMigratedStore, openStore, type Store, type StoreLocation } from "../../src/store/store.ts";
import { codexLbCommand } from "../support/process.ts";
import { openTestStore, storeVariants } from "../support/stores.ts";

/** Primary-key columns of `table`. */
async function primaryKey(store: Store, table: string): Promise<Set<string>> {
  const q =
    store.location.kind === "sqlite"
      ? sql<{ name: string }>`select name from pragma_table_info(${table}) where pk > 0`
      : sql<{ name: string }>`select k.column_name as name from information_schema.table_constraints c
          join information_schema.key_column_usage k on k.constraint_name = c.constraint_name
          where c.table_name = ${table} and c.constraint_type = 'PRIMARY KEY'`;
  return new Set((await q.execute(store.db)).rows.map((r) => r.name));
}

/** Tables and their columns (sorted), read from the database itself. */
async function schemaOf(store: Store): Promise<Record<string, string[]>> {
  const tables = await store.db.introspection.getTables();
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    if (t.name.startsWith("kysely_")) continue;
    // SQLite reports primary-key columns as nullable; what matters is that they are the key.
    const pk = await primaryKey(store, t.name);
    out[t.name] = t.columns
      .map((c) => `${c.name}${pk.has(c.name) ? " pk" : c.isNullable ? "" : " not null"}`)
      .sort();
  }
  return out;
}

const schemas: Record<string, Record<string, string[]>> = {};

for (const variant of storeVariants) {
  describe(`store on ${variant.name}`, () => {
    const open: Store[] = [];
    const fresh = async () => {
      const s = await openTestStore(variant, "dialects");
      open.push(s);
      return s;
    };
    afterAll(async () => {
      for (const s of open) await s.close();
    });

    test("every migration is applied once; re-opening applies nothing and keeps data", async () => {
      const location = await variant.location("reopen");
      const store = await openMigratedStore(location);
      const applied = await store.db
        .selectFrom("kysely_migration" as never)
        .select("name" as never)
        .orderBy("name" as never)
        .execute();
      expect(applied.map((r) => (r as { name: string }).name)).toEqual(Object.keys(migrations));
      await store.db.insertInto("settings").values({ key: "k", value: "v", updated_at: 1 }).execute();
      expect(await store.ping()).toBe(true);
      schemas[variant.name] = await schemaOf(store);
      await store.close();
      expect(await store.ping()).toBe(false);
      const again = openStore(location);
      const { results, error } = await again.migrate();
      expect(error).toBeUndefined();
      expect(results).toEqual([]);
      expect(await again.db.selectFrom("settings").select("value").execute()).toEqual([{ value: "v" }]);
      await again.close();
    }, 30_000);

    test("foreign keys cascade: deleting an account deletes its events and keeps its request logs", async () => {
      const store = await fresh();
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
    }, 30_000);

    test("an event for an unknown account is refused by the foreign key", async () => {
      const store = await fresh();
      await expect(
        store.db
          .insertInto("account_events")
          .values({ at: 1, account_id: "ghost", action: "x", source: "y" })
          .execute(),
      ).rejects.toThrow(/foreign key/i);
    }, 30_000);

    test("numbers come back as numbers (bigint columns, counts, sums), blobs as bytes, ids auto-numbered", async () => {
      const store = await fresh();
      const token = new Uint8Array([0, 1, 2, 250, 255]);
      await store.db
        .insertInto("accounts")
        .values({
          id: "a",
          codex_installation_id: "i",
          created_at: 1_764_000_000_123,
          updated_at: 2,
          access_token_enc: token,
          access_token_expires_at: 1_764_000_999_999,
        })
        .execute();
      const row = await store.db.selectFrom("accounts").selectAll().executeTakeFirstOrThrow();
      expect(row.created_at).toBe(1_764_000_000_123);
      expect(row.access_token_expires_at).toBe(1_764_000_999_999);
      expect(row.version).toBe(0);
      expect(new Uint8Array(row.access_token_enc as Uint8Array)).toEqual(token);
      for (let i = 0; i < 3; i++)
        await store.db
          .insertInto("usage_snapshots")
          .values({ account_id: "a", recorded_at: i, window: "primary", used_percent: 12.345678901 })
          .execute();
      const snaps = await store.db
        .selectFrom("usage_snapshots")
        .select(["id", "used_percent"])
        .orderBy("id")
        .execute();
      expect(snaps.map((s) => s.id)).toEqual([1, 2, 3]);
      expect(snaps[0]?.used_percent).toBe(12.345678901);
      const agg = await store.db
        .selectFrom("usage_snapshots")
        .select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.sum<number>("recorded_at").as("s")])
        .executeTakeFirstOrThrow();
      expect(agg).toEqual({ n: 3, s: 3 });
    }, 30_000);

    test("request-log triggers keep the per-key hour buckets (insert, update, delete)", async () => {
      const store = await fresh();
      const hour = 3_600_000 * 500_000;
      const log = (id: string, input: number, cost: number | null) => ({
        requested_at: hour + 5,
        request_id: id,
        api_key_id: "k",
        model: "gpt-5",
        endpoint: "/v1/responses",
        status: "success",
        input_tokens: input,
        output_tokens: 10,
        cost_usd: cost,
      });
      await store.db
        .insertInto("request_logs")
        .values([log("r1", 100, 0.5), log("r2", 40, null)])
        .execute();
      const bucket = () =>
        store.db
          .selectFrom("api_key_usage_hourly")
          .select([
            "hour",
            "requests",
            "input_tokens",
            "output_tokens",
            "stored_cost_usd",
            "unpriced_input_tokens",
          ])
          .executeTakeFirstOrThrow();
      expect(await bucket()).toEqual({
        hour,
        requests: 2,
        input_tokens: 140,
        output_tokens: 20,
        stored_cost_usd: 0.5,
        unpriced_input_tokens: 40,
      });
      await store.db
        .updateTable("request_logs")
        .set({ input_tokens: 50, cost_usd: 0.25 })
        .where("request_id", "=", "r2")
        .execute();
      expect(await bucket()).toMatchObject({
        requests: 2,
        input_tokens: 150,
        stored_cost_usd: 0.75,
        unpriced_input_tokens: 0,
      });
      await store.db.deleteFrom("request_logs").where("request_id", "=", "r1").execute();
      expect(await bucket()).toMatchObject({
        requests: 1,
        input_tokens: 50,
        output_tokens: 10,
        stored_cost_usd: 0.25,
      });
    }, 30_000);

    test("`codex-lb migrate` twice at once on one empty database: both exit 0, each migration runs once", async () => {
      const location: StoreLocation = await variant.location("race");
      const url = location.kind === "sqlite" ? location.path : location.url;
      const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-migrate-"));
      const run = () =>
        Bun.spawn([...codexLbCommand(), "migrate"], {
          cwd: dataDir,
          env: {
            PATH: process.env.PATH ?? "",
            HOME: dataDir,
            CODEX_LB_DATA_DIR: dataDir,
            CODEX_LB_DATABASE_URL: url,
          },
          stdout: "pipe",
          stderr: "pipe",
        });
      const procs = [run(), run()];
      const codes = await Promise.all(procs.map((p) => p.exited));
      const errs = await Promise.all(procs.map((p) => new Response(p.stderr).text()));
      expect({ codes, errs }).toEqual({ codes: [0, 0], errs: ["", ""] });
      const store = openStore(location);
      const applied = await store.db
        .selectFrom("kysely_migration" as never)
        .select("name" as never)
        .execute();
      expect(applied.length).toBe(Object.keys(migrations).length);
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }, 30_000);

    test("0097 gives older request-log rows a kind: compact for the compact endpoints, else response", async () => {
      const store = openStore(await variant.location("kind"));
      open.push(store);
      const migrator = new Migrator({ db: store.db, provider: bundledMigrations });
      const to0096 = await migrator.migrateTo("0096_request_log_queue_ms");
      expect(to0096.error).toBeUndefined();
      const row = (id: number, endpoint: string) => ({
        requested_at: id,
        request_id: `r${id}`,
        endpoint,
        status: "success",
      });
      await store.db
        .insertInto("request_logs")
        .values([
          row(1, "/backend-api/codex/responses"),
          row(2, "/backend-api/codex/responses/compact"),
          row(3, "/v1/responses/compact"),
          row(4, "/v1/chat/completions"),
        ] as never)
        .execute();
      const { error } = await store.migrate();
      expect(error).toBeUndefined();
      const kinds = await store.db
        .selectFrom("request_logs")
        .select(["request_id", "kind"])
        .orderBy("request_id")
        .execute();
      expect(kinds).toEqual([
        { request_id: "r1", kind: "response" },
        { request_id: "r2", kind: "compact" },
        { request_id: "r3", kind: "compact" },
        { request_id: "r4", kind: "response" },
      ]);
    }, 30_000);

    test("a compare-and-set update reports how many rows it changed", async () => {
      const store = await fresh();
      await store.db
        .insertInto("accounts")
        .values({ id: "a", codex_installation_id: "i", created_at: 1, updated_at: 1 })
        .execute();
      const cas = (from: number) =>
        store.db
          .updateTable("accounts")
          .set({ version: from + 1 })
          .where("id", "=", "a")
          .where("version", "=", from)
          .executeTakeFirst();
      expect(Number((await cas(0)).numUpdatedRows)).toBe(1);
      expect(Number((await cas(0)).numUpdatedRows)).toBe(0);
    }, 30_000);
  });
}

describe("both dialects", () => {
  test("the same migrations give the same tables, columns and nullability", () => {
    expect(schemas.sqlite).toBeDefined();
    expect(schemas.postgres).toEqual(schemas.sqlite as Record<string, string[]>);
  });
});
