import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiKey } from "../../src/access/api-keys/repository.ts";
import { LimitReservations } from "../../src/access/api-keys/reservations.ts";
import type { NewRequestLogRow } from "../../src/store/schema.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-release-"));
  store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const silent = { warn: () => {}, info: () => {} };
function row(apiKeyId: string, requestId: string, now: number): NewRequestLogRow {
  return {
    requested_at: now,
    request_id: requestId,
    api_key_id: apiKeyId,
    model: "gpt-5.4",
    endpoint: "/v1/responses",
    status: "success",
    http_status: 200,
    input_tokens: 10,
    output_tokens: 5,
  } as never;
}
async function left(apiKeyId: string): Promise<{ request_id: string; settled: number }[]> {
  return store.db
    .selectFrom("api_key_reservations")
    .select(["request_id", "settled"])
    .where("api_key_id", "=", apiKeyId)
    .orderBy("request_id")
    .execute();
}

for (const path of ["kysely", "sqlite group commit"] as const)
  describe(`reservations dropped once their log rows are written (${path})`, () => {
    const make = () =>
      new LimitReservations(store.db, silent, undefined, path === "kysely" ? undefined : store.sqlite);
    test("40 held here: settled when queued, all deleted (in batches) when written; unwritten ones stay", async () => {
      const now = Date.UTC(2026, 0, 10, 9, 13);
      const { record } = await createApiKey(
        store.db,
        {
          name: `batch ${path}`,
          limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1e9 }],
        },
        now,
      );
      const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
      const r = make();
      const rows: NewRequestLogRow[] = [];
      for (let i = 0; i < 41; i++) {
        const id = `req-${String(i).padStart(2, "0")}`;
        expect(await r.hold(key, { requestId: id, model: "gpt-5.4", payload: {} }, now + i)).not.toBeNull();
        rows.push(row(key.id, id, now + i));
      }
      for (const x of rows) r.rowAdded(x);
      await Bun.sleep(20); // the settles are fire-and-forget
      expect((await left(key.id)).every((x) => x.settled === 1)).toBe(true);
      await r.rowsWritten(rows.slice(0, 40));
      expect(await left(key.id)).toEqual([{ request_id: "req-40", settled: 1 }]);
    });

    test("a row whose reservation this process does not know (another replica's) is matched by key and request id", async () => {
      const now = Date.UTC(2026, 0, 10, 9, 13);
      const { record } = await createApiKey(
        store.db,
        {
          name: `other ${path}`,
          limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1e9 }],
        },
        now,
      );
      const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
      const a = make();
      await a.hold(key, { requestId: "x1", model: "gpt-5.4", payload: {} }, now);
      await a.hold(key, { requestId: "x2", model: "gpt-5.4", payload: {} }, now);
      const b = make();
      await b.rowsWritten([row(key.id, "x1", now)]);
      expect(await left(key.id)).toEqual([{ request_id: "x2", settled: 0 }]);
    });
  });

test("upgrading (0098, SQLite) keeps every reservation, and they still count", async () => {
  const { Migrator } = await import("kysely");
  const { bundledMigrations } = await import("../../src/store/migrations/index.ts");
  const { openStore } = await import("../../src/store/store.ts");
  const old = openStore({ kind: "sqlite", path: ":memory:" });
  try {
    const migrator = new Migrator({ db: old.db, provider: bundledMigrations });
    expect((await migrator.migrateTo("0097_request_log_kind")).error).toBeUndefined();
    const now = Date.UTC(2026, 0, 10, 9, 13);
    const limits = [{ limitType: "total_tokens" as const, limitWindow: "daily" as const, maxValue: 1000 }];
    const { record } = await createApiKey(old.db, { name: "upgrade", limits }, now);
    const reservation = (id: string, settled: number, input: number, output: number) => ({
      id,
      api_key_id: record.id,
      request_id: `req-${id}`,
      model: "gpt-5.4",
      created_at: now + 1,
      settled,
      input_tokens: input,
      cached_input_tokens: 0,
      output_tokens: output,
      cost_usd: 0,
    });
    const before = [reservation("r1", 1, 400, 300), reservation("r2", 0, 1, 200)];
    await old.db.insertInto("api_key_reservations").values(before).execute();
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    expect(await old.db.selectFrom("api_key_reservations").selectAll().orderBy("id").execute()).toEqual(
      before,
    );
    // 901 held: a request estimated at 1 + 100 tokens beside one in flight does not fit.
    const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
    const r = new LimitReservations(old.db, silent, undefined, old.sqlite);
    const refused = await r
      .hold(
        key,
        { requestId: "next", model: "gpt-5.4", payload: {}, body: { max_output_tokens: 100 } },
        now + 2,
      )
      .then(
        () => "held",
        (e: unknown) => String(e),
      );
    expect(refused).toContain("would be exceeded by the requests in flight (901 used or reserved)");
  } finally {
    await old.close();
  }
});
