/**
 * The balancer inside a real gateway: `previous_response_id` continuity, health after a request,
 * and the leases provider.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { errorBody, rejectionError } from "../../src/core/errors.ts";
import type { Action, GatewayServices } from "../../src/plugin-host/api.ts";
import type { TestGateway } from "../support/gateway.ts";
import { seeded } from "./fixtures.ts";
import { type Harness, startHarness } from "./harness.ts";

let h: Harness;
let gw: TestGateway;
let services: GatewayServices;
let select: Harness["select"];
let routed: Harness["routed"];
let reactivateAll: Harness["reactivateAll"];
beforeAll(async () => {
  h = await startHarness();
  ({ gw, services, select, routed, reactivateAll } = h);
});
afterAll(async () => {
  await gw.stop();
});
beforeEach(async () => {
  await gw.running.store.db.deleteFrom("sticky_sessions").execute();
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
    // As the proxy renders it: 503 from the catalogue, OpenAI envelope naming the parameter.
    const err = rejectionError(reject);
    expect([err.status, err.type]).toEqual([503, "server_error"]);
    expect(errorBody(err, "openai")).toMatchObject({
      error: { code: "account_unavailable", param: "previous_response_id" },
    });
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
