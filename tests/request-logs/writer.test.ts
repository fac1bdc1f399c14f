/**
 * The request-log writer on both dialects: rows of different shapes written with prepared
 * statements, response owners kept in `response_owners` (latest row wins, rows without an account
 * ignored, rows inserted by any path counted) and pruned after the TTL in the logs' own time.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { RequestLogWriter } from "../../src/request-logs/writer.ts";
import type { Store } from "../../src/store/store.ts";
import { insertAccount } from "../balancing/fixtures.ts";
import { openTestStore, storeVariants } from "../support/stores.ts";

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const quiet = { error: (o: object, m: string) => console.error(m, o) };

// SQLite twice: through Kysely (as without the store's connection) and with synchronous statements
// on the store's connection (as the gateway writes them).
const writerVariants = storeVariants.flatMap((variant) =>
  variant.name === "sqlite"
    ? [
        { variant, name: "sqlite (Kysely)", sync: false },
        { variant, name: "sqlite (synchronous statements)", sync: true },
      ]
    : [{ variant, name: variant.name, sync: false }],
);

for (const { variant, name, sync } of writerVariants) {
  describe(`request-log writer on ${name}`, () => {
    const open: Store[] = [];
    afterAll(async () => {
      for (const s of open) await s.close();
    });

    test("rows of any shape are written as given; owners follow the newest row and expire after the TTL", async () => {
      const store = await openTestStore(variant, "writer");
      open.push(store);
      if (sync) expect(store.sqlite).toBeDefined();
      for (const id of ["a", "b", "c", "d", "e"]) await insertAccount(store.db, id);
      const w = new RequestLogWriter(store.db, quiet, 60_000, {
        ownerTtlMs: 24 * HOUR,
        ...(sync ? { sqlite: store.sqlite } : {}),
      });
      const base = { endpoint: "/v1/responses", status: "success" } as const;
      w.add({ ...base, requested_at: T0, request_id: "r1", account_id: "a", response_id: "resp_1" });
      w.add({
        ...base,
        requested_at: T0 + 1,
        request_id: "r2",
        account_id: "b",
        response_id: "resp_2",
        model: "gpt-5.2",
        input_tokens: 3,
        cost_usd: 0.5,
        transport: "websocket",
      });
      w.add({ ...base, requested_at: T0 + 2, request_id: "r3", account_id: null, response_id: "resp_2" });
      await w.flush();
      const rows = await store.db.selectFrom("request_logs").selectAll().orderBy("id").execute();
      expect(rows.map((r) => [r.request_id, r.account_id, r.response_id, r.transport])).toEqual([
        ["r1", "a", "resp_1", "http"],
        ["r2", "b", "resp_2", "websocket"],
        ["r3", null, "resp_2", "http"],
      ]);
      expect(rows[1]).toMatchObject({ model: "gpt-5.2", input_tokens: 3, cost_usd: 0.5 });
      expect(await w.responseOwner("resp_1")).toBe("a");
      expect(await w.responseOwner("resp_2")).toBe("b");

      // A later answer with the same id moves it; a row inserted by another path counts too.
      w.add({ ...base, requested_at: T0 + HOUR, request_id: "r4", account_id: "c", response_id: "resp_1" });
      await w.flush();
      await store.db
        .insertInto("request_logs")
        .values({
          ...base,
          requested_at: T0 + HOUR,
          request_id: "r5",
          account_id: "d",
          response_id: "resp_5",
        })
        .execute();
      expect(await w.responseOwner("resp_1")).toBe("c");
      expect(await w.responseOwner("resp_5")).toBe("d");

      // A day later (in the logs' own time), owners older than the TTL are pruned; the logs stay.
      w.add({
        ...base,
        requested_at: T0 + 24 * HOUR + 2,
        request_id: "r6",
        account_id: "e",
        response_id: "resp_6",
      });
      await w.flush();
      expect(await w.responseOwner("resp_2")).toBeNull();
      expect(await w.responseOwner("resp_1")).toBe("c");
      expect(await w.responseOwner("resp_6")).toBe("e");
      expect((await store.db.selectFrom("request_logs").select("id").execute()).length).toBe(6);
      await w.stop();
    });
  });
}

test("queued rows are written when the flush interval has passed on the writer's timers", async () => {
  const store = await openTestStore(storeVariants[0]!, "writer-timer");
  try {
    const clock = new FakeClock(T0);
    const w = new RequestLogWriter(store.db, quiet, 500, { timers: clock, sqlite: store.sqlite });
    const written: number[] = [];
    w.onWritten((rows) => written.push(rows.length));
    w.add({ endpoint: "/v1/responses", status: "success", requested_at: T0, request_id: "t1" });
    w.add({ endpoint: "/v1/responses", status: "success", requested_at: T0, request_id: "t2" });
    expect(clock.pending).toBe(1);
    await clock.advance(499);
    expect(w.pending).toBe(2);
    expect(written).toEqual([]);
    await clock.advance(1);
    // The timer fired and started the write (no flush() called): wait for the store's I/O.
    expect(clock.pending).toBe(0);
    for (let i = 0; i < 200 && written.length === 0; i++) await Bun.sleep(5);
    expect(written).toEqual([2]);
    expect(w.pending).toBe(0);
    const n = await store.db.selectFrom("request_logs").select("request_id").execute();
    expect(n.map((r) => r.request_id).sort()).toEqual(["t1", "t2"]);
    await w.stop();
  } finally {
    await store.close();
  }
});

test("upgrading copies the owners already in the request logs (the newest row with an account wins)", async () => {
  const { Migrator } = await import("kysely");
  const { bundledMigrations } = await import("../../src/store/migrations/index.ts");
  const { openStore } = await import("../../src/store/store.ts");
  const store = openStore({ kind: "sqlite", path: ":memory:" });
  try {
    const migrator = new Migrator({ db: store.db, provider: bundledMigrations });
    expect((await migrator.migrateTo("0072_login_attempts")).error).toBeUndefined();
    for (const id of ["a", "b"]) await insertAccount(store.db, id);
    const row = (n: number, account: string | null, responseId: string) => ({
      requested_at: T0 + n,
      request_id: `r${n}`,
      account_id: account,
      response_id: responseId,
      endpoint: "/v1/responses",
      status: "success",
    });
    await store.db
      .insertInto("request_logs")
      .values([row(1, "a", "resp_x"), row(2, "b", "resp_x"), row(3, null, "resp_x"), row(4, "a", "resp_y")])
      .execute();
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    const owners = await store.db.selectFrom("response_owners").selectAll().orderBy("response_id").execute();
    expect(owners).toEqual([
      { response_id: "resp_x", account_id: "b", created_at: T0 + 2 },
      { response_id: "resp_y", account_id: "a", created_at: T0 + 4 },
    ]);
  } finally {
    await store.close();
  }
});
