/**
 * The balancer inside a real gateway: `account.select` fired through the gateway's dispatcher with
 * accounts and usage in a real SQLite store, as the proxy will fire it.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { capacityWeight } from "../../plugins/balancing/strategies.ts";
import type { AccountSnapshot, Action, GatewayServices } from "../../src/plugin-host/api.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { candidatesOf, DAY, insertAccount, insertUsage, seeded, tally, weekly } from "./fixtures.ts";

let gw: TestGateway;
let services: GatewayServices;
const now0 = Date.now();

beforeAll(async () => {
  gw = await startGateway();
  services = gw.running.gateway.services;
  const db = gw.running.store.db;
  // Same weekly reset for all three, so only remaining capacity decides the split.
  await insertAccount(db, "acc-a", { plan_type: "plus", created_at: 1 });
  await insertAccount(db, "acc-b", { plan_type: "plus", created_at: 2 });
  await insertAccount(db, "acc-c", { plan_type: "pro", created_at: 3 });
  await insertUsage(db, "acc-a", "secondary", weekly(50, now0, 6.5 * DAY), now0);
  await insertUsage(db, "acc-b", "secondary", weekly(10, now0, 6.5 * DAY), now0);
  await insertUsage(db, "acc-c", "secondary", weekly(80, now0, 6.5 * DAY), now0);
});
afterAll(async () => {
  await gw.stop();
});
beforeEach(async () => {
  await gw.running.store.db.deleteFrom("sticky_sessions").execute();
});

interface Req {
  headers?: Record<string, string>;
  previousResponseId?: string;
  promptCacheKey?: string;
  excluded?: string[];
  now?: number;
  random?: () => number;
}

let seq = 0;
async function select(r: Req = {}): Promise<{ action: Action | undefined; all: readonly AccountSnapshot[] }> {
  const now = r.now ?? Date.now();
  const all = await services.accounts.list();
  const excluded = r.excluded ?? [];
  const outcome = await services.fire("account.select", {
    requestId: `req-${++seq}`,
    model: "gpt-5.4",
    candidates: candidatesOf(all, now, excluded),
    all,
    excluded,
    headers: new Headers(r.headers ?? {}),
    body: { promptCacheKey: r.promptCacheKey ?? null, previousResponseId: r.previousResponseId ?? null },
    now,
    random: r.random ?? Math.random,
  });
  return {
    action: outcome.actions.find((a) => a.type === "route.account" || a.type === "request.reject"),
    all,
  };
}

async function routed(r: Req = {}): Promise<string> {
  const { action } = await select(r);
  if (action?.type !== "route.account") throw new Error(`expected a route, got ${JSON.stringify(action)}`);
  return action.accountId;
}

async function reactivateAll(): Promise<void> {
  for (const id of ["acc-a", "acc-b", "acc-c"]) {
    await services.apply([{ type: "account.reactivate", accountId: id }], { source: "test" });
  }
}

describe("capacity_weighted in the gateway", () => {
  test("300 requests split in proportion to remaining capacity", async () => {
    const all = await services.accounts.list();
    const weights = Object.fromEntries(all.map((a) => [a.id, capacityWeight(a, now0)]));
    const total = Object.values(weights).reduce((s, w) => s + w, 0);
    const random = seeded(2026);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await routed({ random, now: now0 }));
    const counts = tally(ids);
    for (const [id, w] of Object.entries(weights)) {
      const expected = (w / total) * 300;
      expect(Math.abs((counts[id] ?? 0) - expected)).toBeLessThan(4 * Math.sqrt(expected));
    }
    // 3780 : 6804 : 10080 credits left (nobody is behind pace, so no boost).
    expect(weights["acc-b"]! / weights["acc-a"]!).toBeCloseTo(1.8, 6);
  });
});

describe("sticky sessions", () => {
  test("requests sharing a session-id land on one account", async () => {
    const random = seeded(5);
    const ids = new Set<string>();
    for (let i = 0; i < 30; i++) ids.add(await routed({ headers: { "session-id": "sess-1" }, random }));
    expect(ids.size).toBe(1);
    const res = await fetch(`${gw.url}/api/sticky-sessions`);
    const body = (await res.json()) as { stickySessions: { key: string; kind: string; accountId: string }[] };
    expect(body.stickySessions).toEqual([
      expect.objectContaining({ key: "sess-1", kind: "session", accountId: [...ids][0] }),
    ]);
  });

  test("after its account returns 429 the session moves, and later requests stay on the new one", async () => {
    const headers = { session_id: "sess-move" };
    const first = await routed({ headers });
    const resetAt = Date.now() + 60_000;
    // What the failover rules do with an upstream 429: rate-limit the account until its reset.
    const [applied] = await services.apply(
      [{ type: "account.rate_limit", accountId: first, resetAt, reason: "429 from upstream" }],
      { source: "test" },
    );
    expect(applied?.status).toBe("applied");
    // The same request retried without the failed account:
    const moved = await routed({ headers, excluded: [first] });
    expect(moved).not.toBe(first);
    for (let i = 0; i < 10; i++) expect(await routed({ headers })).toBe(moved);
    // Even once the old account is back, the conversation stays where its cache now is.
    for (let i = 0; i < 5; i++) expect(await routed({ headers, now: resetAt + 1000 })).toBe(moved);
    await reactivateAll();
  });

  test("the key moves when its account cools down after failures", async () => {
    const headers = { "thread-id": "thread-1" };
    const first = await routed({ headers });
    await services.apply([{ type: "account.cooldown", accountId: first, until: Date.now() + 30_000 }], {
      source: "test",
    });
    const second = await routed({ headers });
    expect(second).not.toBe(first);
    await reactivateAll();
  });

  test("a bound account at its stream cap spills one request over without moving the key", async () => {
    const headers = { "session-id": "sess-busy" };
    const owner = await routed({ headers });
    const leases = services.provider("leases");
    const held = await Promise.all(Array.from({ length: 8 }, () => leases.acquire(owner)));
    expect(leases.inFlight(owner)).toBe(8);
    const spilled = await routed({ headers });
    expect(spilled).not.toBe(owner);
    expect((await services.sticky.lookup("sess-busy"))?.accountId).toBe(owner);
    for (const l of held) l.release();
    expect(await routed({ headers })).toBe(owner);
  });

  test("DELETE /api/sticky-sessions/{key} forgets a binding", async () => {
    await routed({ promptCacheKey: "cache-key/with slash" });
    const key = encodeURIComponent("cache-key/with slash");
    const del = await fetch(`${gw.url}/api/sticky-sessions/${key}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ deleted: true, key: "cache-key/with slash" });
    const again = await fetch(`${gw.url}/api/sticky-sessions/${key}`, { method: "DELETE" });
    expect(again.status).toBe(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });
});

describe("previous_response_id", () => {
  async function logResponse(responseId: string, accountId: string) {
    await gw.running.store.db
      .insertInto("request_logs")
      .values({
        requested_at: Date.now(),
        request_id: `log-${responseId}`,
        account_id: accountId,
        endpoint: "/backend-api/codex/responses",
        status: "success",
        response_id: responseId,
      } as never)
      .execute();
  }

  test("goes to the account that produced the response, over any sticky key", async () => {
    await logResponse("resp_b1", "acc-b");
    const random = seeded(9);
    for (let i = 0; i < 10; i++) {
      expect(
        await routed({ previousResponseId: "resp_b1", headers: { "session-id": "s-prev" }, random }),
      ).toBe("acc-b");
    }
    // The conversation's key follows its owner.
    expect((await services.sticky.lookup("s-prev"))?.accountId).toBe("acc-b");
  });

  test("an unusable owner is a clear error, not a silent wrong answer", async () => {
    await logResponse("resp_c1", "acc-c");
    const resetAt = Date.now() + 90_000;
    await services.apply([{ type: "account.rate_limit", accountId: "acc-c", resetAt, reason: "429" }], {
      source: "test",
    });
    const { action } = await select({ previousResponseId: "resp_c1" });
    expect(action).toMatchObject({ type: "request.reject", code: "account_unavailable" });
    const reject = action as Extract<Action, { type: "request.reject" }>;
    expect(reject.message).toContain("rate limited");
    expect(Number(reject.headers?.["retry-after"])).toBeGreaterThan(80);
    expect(Number(reject.headers?.["retry-after"])).toBeLessThanOrEqual(90);
    // Also when the owner just failed for this very request.
    await reactivateAll();
    const tried = await select({ previousResponseId: "resp_c1", excluded: ["acc-c"] });
    expect(tried.action).toMatchObject({ type: "request.reject", code: "account_unavailable" });
  });

  test("an unknown response id is balanced normally (the upstream answers not-found itself)", async () => {
    expect(["acc-a", "acc-b", "acc-c"]).toContain(await routed({ previousResponseId: "resp_unknown" }));
  });
});

describe("health after the request", () => {
  test("a success clears the backoff; a rate limit whose reset passed ends", async () => {
    const db = gw.running.store.db;
    await db
      .updateTable("accounts")
      .set({
        failure_streak: 3,
        cooldown_until: Date.now() - 1,
        status: "rate_limited",
        reset_at: Date.now() - 1,
      })
      .where("id", "=", "acc-a")
      .execute();
    const account = await services.accounts.get("acc-a");
    await services.fire("request.completed", {
      requestId: "req-done",
      account,
      ok: true,
      httpStatus: 200,
      now: Date.now(),
    });
    expect(await services.accounts.get("acc-a")).toMatchObject({
      status: "active",
      failureStreak: 0,
      cooldownUntil: null,
      resetAt: null,
    });
  });

  test("a failed request changes nothing", async () => {
    await gw.running.store.db
      .updateTable("accounts")
      .set({ failure_streak: 2 })
      .where("id", "=", "acc-b")
      .execute();
    const account = await services.accounts.get("acc-b");
    await services.fire("request.completed", {
      requestId: "r",
      account,
      ok: false,
      httpStatus: 502,
      now: Date.now(),
    });
    expect((await services.accounts.get("acc-b"))?.failureStreak).toBe(2);
    await reactivateAll();
  });
});

describe("leases provider", () => {
  test("100 aborted streams leave every account with zero in flight", async () => {
    const leases = services.provider("leases");
    const ids = ["acc-a", "acc-b", "acc-c"];
    const controllers = Array.from({ length: 100 }, () => new AbortController());
    const pending = controllers.map((ac, i) =>
      leases.acquire(ids[i % 3]!, { signal: ac.signal }).catch((e: unknown) => e),
    );
    await Bun.sleep(0);
    expect(ids.map((id) => leases.inFlight(id))).toEqual([8, 8, 8]);
    for (const ac of controllers) ac.abort();
    await Promise.all(pending);
    expect(ids.map((id) => leases.inFlight(id))).toEqual([0, 0, 0]);
  });
});
