import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authorizeProxyRequest } from "../../src/access/api-keys/authorize.ts";
import {
  type LimitSpec,
  usageBetween,
  usageOfTotals,
  usageTotalsQuery,
  windowBounds,
} from "../../src/access/api-keys/limits.ts";
import { costUsd, priceOf } from "../../src/access/api-keys/pricing.ts";
import { createApiKey, updateApiKey } from "../../src/access/api-keys/repository.ts";
import { GatewayError } from "../../src/core/errors.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 10, 9, 13); // key creation time
const H0 = Date.UTC(2026, 0, 10, 9, 0); // its hour: windows are anchored here

let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-limits-"));
  store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
async function log(
  apiKeyId: string,
  at: number,
  t: { model?: string; input?: number; cached?: number; output?: number; cost?: number | null },
) {
  await store.db
    .insertInto("request_logs")
    .values({
      requested_at: at,
      request_id: `req-${++seq}`,
      api_key_id: apiKeyId,
      model: t.model ?? "gpt-5.4",
      endpoint: "/v1/responses",
      status: "success",
      input_tokens: t.input ?? 0,
      cached_input_tokens: t.cached ?? 0,
      output_tokens: t.output ?? 0,
      cost_usd: t.cost ?? null,
    } as never)
    .execute();
}

async function newKey(limits: LimitSpec[], allowedModels: string[] | null = null) {
  return (await createApiKey(store.db, { name: `k${++seq}`, limits, allowedModels }, T0)).record;
}

async function refusal(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

describe("windowBounds (anchored at the hour of key creation)", () => {
  const cases: [string, "5h" | "daily" | "weekly" | "monthly", number, number, number][] = [
    ["at creation", "daily", T0, H0, H0 + DAY],
    ["inside the first day", "daily", T0 + 5 * HOUR, H0, H0 + DAY],
    ["exactly one day after the anchor", "daily", H0 + DAY, H0 + DAY, H0 + 2 * DAY],
    ["a minute before the reset", "daily", H0 + DAY - 60_000, H0, H0 + DAY],
    ["third 5h window", "5h", T0 + 11 * HOUR, H0 + 10 * HOUR, H0 + 15 * HOUR],
    ["second week", "weekly", T0 + 8 * DAY, H0 + 7 * DAY, H0 + 14 * DAY],
    ["monthly = 30 days", "monthly", T0 + 31 * DAY, H0 + 30 * DAY, H0 + 60 * DAY],
    ["clock before creation", "daily", T0 - 2 * HOUR, H0, H0 + DAY],
  ];
  test.each(cases)("%s", (_n, window, now, start, resetsAt) => {
    expect(windowBounds(T0, window, now)).toEqual({ start, resetsAt });
  });
});

describe("pricing", () => {
  test.each([
    ["gpt-5.4", { input: 1_000_000, cached: 0, output: 0 }, 2.5],
    ["gpt-5.4", { input: 1_000_000, cached: 1_000_000, output: 0 }, 0.25],
    ["gpt-5.4", { input: 2_000_000, cached: 500_000, output: 1_000_000 }, 1.5 * 2.5 + 0.5 * 0.25 + 15],
    ["GPT-5.4-mini", { input: 0, cached: 0, output: 2_000_000 }, 9],
    ["gpt-5.4-mini-high", { input: 1_000_000, cached: 0, output: 0 }, 0.75],
    ["gpt-5.4", { input: 100, cached: 500, output: 0 }, (100 * 0.25) / 1e6],
  ] as const)("%s %o → $%d", (model, t, usd) => {
    expect(
      costUsd(model, { inputTokens: t.input, cachedInputTokens: t.cached, outputTokens: t.output }),
    ).toBeCloseTo(usd, 9);
  });
  test("an unknown model has no price", () => {
    expect(priceOf("llama-3")).toBeNull();
    expect(costUsd(null, { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1 })).toBeNull();
  });
  test.each(["constructor", "__proto__", "Constructor", "constructor-x", "hasownproperty"])(
    "a model named like what every object inherits (%s) has no price either",
    (model) => {
      expect(priceOf(model)).toBeNull();
      expect(costUsd(model, { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1 })).toBeNull();
    },
  );
});

describe("usage counting from request_logs", () => {
  test("sums only this key's rows inside the window; prices rows without a stored cost", async () => {
    const key = await newKey([]);
    const other = await newKey([]);
    await log(key.id, H0, { input: 1_000_000, cached: 0, output: 0, model: "gpt-5.4" });
    await log(key.id, H0 + DAY - 1, { input: 10, output: 20, cost: 0.5 });
    await log(key.id, H0 + DAY, { input: 999, output: 999 }); // next window
    await log(key.id, H0 - 1, { input: 999, output: 999 }); // before
    await log(other.id, H0 + HOUR, { input: 777, output: 777 });
    const u = await usageBetween(store.db, key.id, H0, H0 + DAY);
    expect(u).toEqual({
      requests: 2,
      inputTokens: 1_000_010,
      cachedInputTokens: 0,
      outputTokens: 20,
      totalTokens: 1_000_030,
      costUsd: 2.5 + 0.5,
    });
  });
});

describe("ungrouped usage sums (the SQLite reservation path)", () => {
  test("a window of one model (or none) gives exactly the grouped sums; several models ask for the grouped query", async () => {
    const key = await newKey([]);
    const totals = () =>
      store.sqlite!.exclusive((s) => {
        const q = usageTotalsQuery(store.db, key.id, H0, H0 + DAY);
        return usageOfTotals(s.all(q.sql, q.parameters)[0]);
      });
    expect(await totals()).toEqual(await usageBetween(store.db, key.id, H0, H0 + DAY));
    await log(key.id, T0, { input: 1000, cached: 200, output: 300 });
    await log(key.id, T0 + 2 * HOUR, { input: 10, output: 5, cost: 0.25 });
    await log(key.id, T0 - DAY, { input: 7, output: 7 }); // outside the window
    const one = await totals();
    expect(one).toEqual(await usageBetween(store.db, key.id, H0, H0 + DAY));
    expect(one?.requests).toBe(2);
    await log(key.id, T0 + HOUR, { model: "gpt-5.5", input: 50, output: 50 });
    expect(await totals()).toBeNull();
  });
});

describe("usage buckets follow request_logs updates and deletes", () => {
  test("an updated row moves its tokens; a deleted row takes them away", async () => {
    const key = await newKey([]);
    await log(key.id, H0 + 10, { input: 100, output: 10, model: "gpt-5.4" });
    const id = (
      await store.db.selectFrom("request_logs").select("id").orderBy("id", "desc").executeTakeFirstOrThrow()
    ).id;
    await store.db
      .updateTable("request_logs")
      .set({ input_tokens: 300, cost_usd: 1 })
      .where("id", "=", id)
      .execute();
    let u = await usageBetween(store.db, key.id, H0, H0 + DAY);
    expect([u.requests, u.inputTokens, u.outputTokens, u.costUsd]).toEqual([1, 300, 10, 1]);
    await store.db
      .updateTable("request_logs")
      .set({ requested_at: H0 + 2 * DAY })
      .where("id", "=", id)
      .execute();
    u = await usageBetween(store.db, key.id, H0, H0 + DAY);
    expect(u.requests).toBe(0);
    await store.db.deleteFrom("request_logs").where("id", "=", id).execute();
    u = await usageBetween(store.db, key.id, H0, H0 + 3 * DAY);
    expect([u.requests, u.totalTokens, u.costUsd]).toEqual([0, 0, 0]);
  });
});

describe("authorizeProxyRequest", () => {
  test("no key (keyless local request) → nothing to check", async () => {
    expect(await authorizeProxyRequest({ db: store.db, apiKeyId: null, model: "x", now: T0 })).toBeNull();
  });

  test("a model outside the allow-list → 403 model_not_allowed; listed ones (any case) pass", async () => {
    const key = await newKey([], ["gpt-5.4", "gpt-5.4-mini"]);
    const e = await refusal(
      authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: "gpt-5.5", now: T0 }),
    );
    expect([e.status, e.code]).toEqual([403, "model_not_allowed"]);
    expect(e.message).toContain("gpt-5.5");
    const ok = await authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: "GPT-5.4", now: T0 });
    expect(ok?.id).toBe(key.id);
  });

  test("1000 total tokens per day: passes below, 429 once reached, passes again in the next window", async () => {
    const key = await newKey([{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }]);
    const now = T0 + 3 * HOUR;
    await log(key.id, T0 + HOUR, { input: 400, output: 200 });
    expect(
      await authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: "gpt-5.4", now }),
    ).not.toBeNull();
    await log(key.id, T0 + 2 * HOUR, { input: 300, output: 100 });
    const e = await refusal(authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: "gpt-5.4", now }));
    expect([e.status, e.code, e.type]).toEqual([429, "rate_limit_exceeded", "rate_limit_error"]);
    expect(e.message).toContain(new Date(H0 + DAY).toISOString());
    expect(e.message).toContain("daily total_tokens limit of 1000");
    expect(e.headers["retry-after"]).toBe(String((H0 + DAY - now) / 1000));
    expect(e.extra.resets_at).toBe((H0 + DAY) / 1000);
    const tomorrow = H0 + DAY;
    expect(
      await authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: "gpt-5.4", now: tomorrow }),
    ).not.toBeNull();
  });

  test("input, output and cost limits each count their own figure", async () => {
    const key = await newKey([
      { limitType: "input_tokens", limitWindow: "5h", maxValue: 100 },
      { limitType: "output_tokens", limitWindow: "weekly", maxValue: 50 },
      { limitType: "cost_usd", limitWindow: "monthly", maxValue: 1 },
    ]);
    const now = T0 + HOUR;
    await log(key.id, T0, { input: 99, output: 49 });
    expect(await authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: null, now })).not.toBeNull();
    await log(key.id, T0 + 1, { output: 1 });
    let e = await refusal(authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: null, now }));
    expect(e.message).toContain("weekly output_tokens");
    await updateApiKey(
      store.db,
      key.id,
      { limits: [{ limitType: "cost_usd", limitWindow: "monthly", maxValue: 1 }] },
      now,
    );
    await log(key.id, T0 + 2, { model: "gpt-5.5", output: 40_000 }); // 40k × $30/M = $1.20, priced from the table
    e = await refusal(authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: null, now }));
    expect(e.message).toContain("monthly cost_usd limit of 1");
  });

  test("a key deactivated, expired or deleted after admission → 401 invalid_api_key", async () => {
    const key = await newKey([]);
    await updateApiKey(store.db, key.id, { isActive: false }, T0);
    let e = await refusal(authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: null, now: T0 }));
    expect([e.status, e.code]).toEqual([401, "invalid_api_key"]);
    await updateApiKey(store.db, key.id, { isActive: true, expiresAt: T0 + 10 }, T0);
    e = await refusal(authorizeProxyRequest({ db: store.db, apiKeyId: key.id, model: null, now: T0 + 10 }));
    expect(e.message).toContain("expired");
    e = await refusal(authorizeProxyRequest({ db: store.db, apiKeyId: "gone", model: null, now: T0 }));
    expect(e.code).toBe("invalid_api_key");
  });
});
