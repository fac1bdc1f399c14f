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

const silent = { warn: () => {} };

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
