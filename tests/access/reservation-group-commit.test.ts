import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiKey } from "../../src/access/api-keys/repository.ts";
import { LimitReservations } from "../../src/access/api-keys/reservations.ts";
import { GatewayError } from "../../src/core/errors.ts";
import { RequestLogWriter } from "../../src/request-logs/writer.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

let dir: string;
let store: Store;
let seq = 0;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-group-commit-"));
  store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const silent = { warn: () => {}, info: () => {} };

describe("SQLite reservations grouped in one transaction per event-loop turn", () => {
  test("holds asked for together are decided one after another, as sequential ones would be", async () => {
    const now = Date.UTC(2026, 0, 10, 9, 13);
    // An empty body estimates 1 input + 4,096 output tokens: two fit under 10,000, a third would not.
    const limits = [{ limitType: "total_tokens" as const, limitWindow: "daily" as const, maxValue: 10_000 }];
    const outcomes: Record<string, string[]> = {};
    for (const path of ["kysely", "sqlite"] as const) {
      const { record } = await createApiKey(store.db, { name: `burst ${path}`, limits }, now);
      const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
      const r = new LimitReservations(
        store.db,
        silent,
        undefined,
        path === "sqlite" ? store.sqlite : undefined,
      );
      const settled = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          r.hold(key, { requestId: `b${i}`, model: "gpt-5.4", payload: {} }, now),
        ),
      );
      outcomes[path] = settled.map((s) =>
        s.status === "fulfilled"
          ? "held"
          : s.reason instanceof GatewayError
            ? s.reason.code
            : String(s.reason),
      );
      const rows = await store.db
        .selectFrom("api_key_reservations")
        .select("request_id")
        .where("api_key_id", "=", key.id)
        .execute();
      expect(rows.length).toBe(outcomes[path]!.filter((o) => o === "held").length);
    }
    expect(outcomes.sqlite!.filter((o) => o === "held").length).toBe(2);
    expect(outcomes.sqlite!.filter((o) => o === "rate_limit_exceeded").length).toBe(8);
    expect(outcomes.sqlite).toEqual(outcomes.kysely!);
  });
});

describe("the logged usage a batch reads is kept only while no log row can have changed it", () => {
  const now = Date.UTC(2026, 0, 10, 9, 13);
  const limits = [{ limitType: "total_tokens" as const, limitWindow: "daily" as const, maxValue: 100_000 }];
  const row = (apiKeyId: string) => ({
    requested_at: now + 60_000,
    request_id: `logged-${++seq}`,
    api_key_id: apiKeyId,
    model: "gpt-5.4",
    endpoint: "/v1/responses",
    status: "success",
    input_tokens: 150_000,
    output_tokens: 50_000,
  });
  const writes: Record<string, (apiKeyId: string) => Promise<void>> = {
    "the request-log writer": async (apiKeyId) => {
      const w = new RequestLogWriter(store.db, { error: () => {} }, 60_000, { sqlite: store.sqlite });
      w.add(row(apiKeyId));
      await w.stop();
    },
    "a Kysely insert on the store's connection": async (apiKeyId) => {
      await store.db.insertInto("request_logs").values(row(apiKeyId)).execute();
    },
    "another connection to the file": async (apiKeyId) => {
      const other = new Database(join(dir, "store.db"));
      const r = row(apiKeyId);
      other
        .query(
          "INSERT INTO request_logs (requested_at, request_id, api_key_id, model, endpoint, status, input_tokens, output_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          r.requested_at,
          r.request_id,
          r.api_key_id,
          r.model,
          r.endpoint,
          r.status,
          r.input_tokens,
          r.output_tokens,
        );
      other.close();
    },
  };
  for (const [how, write] of Object.entries(writes))
    test(`a row written by ${how} counts at the next hold`, async () => {
      const { record } = await createApiKey(store.db, { name: `watch ${how}`, limits }, now);
      const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
      const r = new LimitReservations(store.db, silent, undefined, store.sqlite);
      // Fills the kept usage of this key's window (nothing logged yet).
      expect(
        await r.hold(key, { requestId: `w-${++seq}`, model: "gpt-5.4", payload: {} }, now),
      ).not.toBeNull();
      await write(key.id);
      const refused = await r
        .hold(key, { requestId: `w-${++seq}`, model: "gpt-5.4", payload: {} }, now + 120_000)
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(refused).toBeInstanceOf(GatewayError);
      expect((refused as GatewayError).code).toBe("rate_limit_exceeded");
      expect((refused as GatewayError).message).toContain("reached");
    });
});

describe("the reservations held are kept across batches and follow the batches' own writes", () => {
  const T0 = Date.UTC(2026, 0, 11, 9, 0);
  const refusalOf = (p: Promise<unknown>) =>
    p.then(
      () => "held",
      (e: unknown) => (e instanceof GatewayError ? e.message : String(e)),
    );
  const both = async (limits: { limitType: "total_tokens"; limitWindow: "daily"; maxValue: number }[]) => {
    const { record } = await createApiKey(store.db, { name: `kept ${++seq}`, limits }, T0);
    const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
    return {
      key,
      grouped: new LimitReservations(store.db, silent, undefined, store.sqlite),
      // A fresh read of the table every time, for comparison.
      fresh: () => new LimitReservations(store.db, silent),
    };
  };

  test("a settle replaces the estimate in the sums kept: the next holds decide as a fresh read does", async () => {
    const { key, grouped, fresh } = await both([
      { limitType: "total_tokens", limitWindow: "daily", maxValue: 10_000 },
    ]);
    // An empty body without max_output_tokens estimates 1 + 4,096 tokens.
    const a = await grouped.hold(key, { requestId: `k-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 1);
    expect(
      await grouped.hold(key, { requestId: `k-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 2),
    ).not.toBeNull();
    await a!.settle({
      requested_at: T0 + 1,
      request_id: "a",
      api_key_id: key.id,
      endpoint: "/v1/responses",
      status: "success",
      input_tokens: 60,
      output_tokens: 40,
    });
    // 100 settled + 4,097 in flight: a third fits (8,294), a fourth would not.
    expect(
      await refusalOf(grouped.hold(key, { requestId: `k-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 3)),
    ).toBe("held");
    const kept = await refusalOf(
      grouped.hold(key, { requestId: `k-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 4),
    );
    expect(kept).toContain("would be exceeded by the requests in flight (8294 used or reserved)");
    const read = await refusalOf(
      fresh().hold(key, { requestId: `k-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 4),
    );
    expect(read).toBe(kept);
  });

  test("a reservation that stops being in flight (over an hour old) stops making later holds wait", async () => {
    const { key, grouped } = await both([
      { limitType: "total_tokens", limitWindow: "daily", maxValue: 5000 },
    ]);
    expect(
      await grouped.hold(key, { requestId: `o-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 1),
    ).not.toBeNull();
    const waiting = await refusalOf(
      grouped.hold(key, { requestId: `o-${++seq}`, model: "gpt-5.4", payload: {} }, T0 + 2),
    );
    expect(waiting).toContain("would be exceeded by the requests in flight");
    // An hour later the first reservation still counts, but no longer as a request in flight: a
    // request alone near the limit is let through.
    const later = T0 + 3_600_000 + 2;
    expect(
      await refusalOf(grouped.hold(key, { requestId: `o-${++seq}`, model: "gpt-5.4", payload: {} }, later)),
    ).toBe("held");
    // Both count now: the limit is reached.
    const kept = await refusalOf(
      grouped.hold(key, { requestId: `o-${++seq}`, model: "gpt-5.4", payload: {} }, later),
    );
    expect(kept).toContain("limit of 5000 reached (8194 used or reserved)");
  });
});

describe("a failed batch", () => {
  test("rejects the holds it carried and ends its settles even when logging a settle's failure throws", async () => {
    const now = Date.UTC(2026, 0, 10, 9, 13);
    const limits = [{ limitType: "total_tokens" as const, limitWindow: "daily" as const, maxValue: 100_000 }];
    const { record } = await createApiKey(store.db, { name: "failed batch", limits }, now);
    const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
    const warned: string[] = [];
    const throwing = {
      info: () => {},
      warn: (_: object, msg: string) => {
        warned.push(msg);
        throw new Error("the log sink is gone");
      },
    };
    const r = new LimitReservations(store.db, throwing, undefined, store.sqlite);
    await r.hold(key, { requestId: "first", model: "gpt-5.4", payload: {} }, now);
    // Another request still holds its reservation: the first one's settle is not its own batch at once.
    await r.hold(key, { requestId: "open", model: "gpt-5.4", payload: {} }, now);
    // The next batch carries the first request's settle and a second hold; both statements fail.
    const other = new Database(join(dir, "store.db"));
    other.exec("ALTER TABLE api_key_reservations RENAME TO api_key_reservations_away");
    try {
      const settled = r.rowAdded({
        requested_at: now,
        request_id: "first",
        api_key_id: key.id,
        model: "gpt-5.4",
        endpoint: "/v1/responses",
        status: "success",
        input_tokens: 10,
        output_tokens: 10,
      });
      const second = r.hold(key, { requestId: "second", model: "gpt-5.4", payload: {} }, now);
      // Before the fix the settle's throwing log line came first and this hold never settled.
      expect(
        await second.then(
          () => "held",
          (e: unknown) => String(e),
        ),
      ).toContain("api_key_reservations");
      expect(warned).toEqual(["settling an API-key reservation failed; its estimate keeps counting"]);
      // The first request's end is not kept waiting by the throwing log line either.
      expect(await settled).toBeUndefined();
    } finally {
      other.exec("ALTER TABLE api_key_reservations_away RENAME TO api_key_reservations");
      other.close();
    }
  });
});

describe("a settle while no other request of the process holds a reservation", () => {
  const now = Date.UTC(2026, 0, 12, 9, 0);
  const limits = [{ limitType: "total_tokens" as const, limitWindow: "daily" as const, maxValue: 100_000 }];
  const newKey = async (name: string) => {
    const { record } = await createApiKey(store.db, { name, limits }, now);
    return { id: record.id, createdAt: record.createdAt, limits: record.limits };
  };
  const row = (keyId: string, requestId: string) => ({
    requested_at: now,
    request_id: requestId,
    api_key_id: keyId,
    model: "gpt-5.4",
    endpoint: "/v1/responses",
    status: "success" as const,
    input_tokens: 10,
    output_tokens: 20,
  });
  /** The key's reservation as another connection sees it (committed rows only), read synchronously. */
  // What a reservation reads before its settle (the estimate) and after it (the row's usage).
  const ESTIMATE = { settled: 0, input_tokens: 1, output_tokens: 4096 };
  const SETTLED = { settled: 1, input_tokens: 10, output_tokens: 20 };
  const holdAs = (r: LimitReservations, key: Parameters<LimitReservations["hold"]>[0], requestId: string) =>
    r.hold(key, { requestId, model: "gpt-5.4", payload: {} }, now);
  const committed = (keyId: string, requestId: string) => {
    const other = new Database(join(dir, "store.db"));
    try {
      return other
        .query(
          "SELECT settled, input_tokens, output_tokens FROM api_key_reservations WHERE api_key_id = ? AND request_id = ?",
        )
        .get(keyId, requestId);
    } finally {
      other.close();
    }
  };

  test("is committed before the log row's rowAdded returns: the client's end has nothing to wait for", async () => {
    const key = await newKey("settle at once");
    const r = new LimitReservations(store.db, silent, undefined, store.sqlite);
    await holdAs(r, key, "solo");
    expect(committed(key.id, "solo")).toEqual(ESTIMATE);
    expect(r.rowAdded(row(key.id, "solo"))).toBeUndefined();
    expect(committed(key.id, "solo")).toEqual(SETTLED);
  });

  test("with another request's reservation open, it waits for its turn's batch as before", async () => {
    const key = await newKey("settle in the batch");
    const r = new LimitReservations(store.db, silent, undefined, store.sqlite);
    await holdAs(r, key, "first");
    await holdAs(r, key, "still open");
    const settled = r.rowAdded(row(key.id, "first"));
    expect(settled).toBeInstanceOf(Promise);
    expect(committed(key.id, "first")).toEqual(ESTIMATE);
    await settled;
    expect(committed(key.id, "first")).toEqual(SETTLED);
    // The other request is now alone: its settle is committed at once.
    expect(r.rowAdded(row(key.id, "still open"))).toBeUndefined();
    expect(committed(key.id, "still open")).toEqual(SETTLED);
  });

  test("while a hold is being written, it waits for the batch too", async () => {
    const key = await newKey("settle beside a hold");
    const r = new LimitReservations(store.db, silent, undefined, store.sqlite);
    await holdAs(r, key, "ending");
    const arriving = holdAs(r, key, "arriving");
    const settled = r.rowAdded(row(key.id, "ending"));
    expect(settled).toBeInstanceOf(Promise);
    await Promise.all([arriving, settled]);
    expect(committed(key.id, "ending")).toEqual(SETTLED);
    expect(committed(key.id, "arriving")).toEqual(ESTIMATE);
  });

  test("that fails is logged at once and its estimate keeps counting; nothing waits for it", async () => {
    const key = await newKey("settle at once fails");
    const warned: string[] = [];
    const log = { info: () => {}, warn: (_: object, msg: string) => void warned.push(msg) };
    const r = new LimitReservations(store.db, log, undefined, store.sqlite);
    await holdAs(r, key, "failing");
    const other = new Database(join(dir, "store.db"));
    other.exec("ALTER TABLE api_key_reservations RENAME TO api_key_reservations_away");
    try {
      expect(r.rowAdded(row(key.id, "failing"))).toBeUndefined();
      expect(warned).toEqual(["settling an API-key reservation failed; its estimate keeps counting"]);
    } finally {
      other.exec("ALTER TABLE api_key_reservations_away RENAME TO api_key_reservations");
      other.close();
    }
    expect(committed(key.id, "failing")).toEqual(ESTIMATE);
  });

  test("after the store closed (a request ending during shutdown), it neither throws nor goes unlogged", async () => {
    // Its own store, closed under a held reservation: the connection refuses, as on a stopping gateway.
    const own = await openMigratedStore({ kind: "sqlite", path: join(dir, "closing.db") });
    const { record } = await createApiKey(own.db, { name: "closing", limits }, now);
    const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
    const warned: string[] = [];
    const log = { info: () => {}, warn: (_: object, msg: string) => void warned.push(msg) };
    const r = new LimitReservations(own.db, log, undefined, own.sqlite);
    await holdAs(r, key, "late");
    await own.close();
    let settled: Promise<void> | undefined;
    expect(() => {
      settled = r.rowAdded(row(key.id, "late"));
    }).not.toThrow();
    await settled;
    expect(warned).toEqual(["settling an API-key reservation failed; its estimate keeps counting"]);
  });
});
