/**
 * The balancer inside a real gateway: `account.select` fired through the gateway's dispatcher with
 * accounts and usage in a real SQLite store — the capacity split and sticky sessions.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { capacityWeight } from "../../plugins/balancing/strategies.ts";
import type { GatewayServices } from "../../src/plugin-host/api.ts";
import type { TestGateway } from "../support/gateway.ts";
import { seeded, tally } from "./fixtures.ts";
import { type Harness, startHarness } from "./harness.ts";

let h: Harness;
let gw: TestGateway;
let services: GatewayServices;
let now0: number;
let routed: Harness["routed"];
let reactivateAll: Harness["reactivateAll"];
beforeAll(async () => {
  h = await startHarness();
  ({ gw, services, now0, routed, reactivateAll } = h);
});
afterAll(async () => {
  await gw.stop();
});
beforeEach(async () => {
  await gw.running.store.db.deleteFrom("sticky_sessions").execute();
});

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
    const body = (await res.json()) as { items: { key: string; kind: string; accountId: string }[] };
    expect(body.items).toEqual([
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
