import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiKey } from "../../src/access/api-keys/repository.ts";
import { LimitReservations } from "../../src/access/api-keys/reservations.ts";
import { GatewayError } from "../../src/core/errors.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

let dir: string;
let store: Store;
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
