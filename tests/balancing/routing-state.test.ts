/**
 * The balancer's precomputed routing state follows every change: it is built once per account
 * list (the snapshot cache's), reused while nothing changes, and a pause, a cooldown, a quota
 * reading or a new account gives a new list and so a new state. After each change the gateway's
 * choices equal a fresh computation over the same accounts (`chooseAccount`, seeded alike).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chooseAccount, RoutingState } from "../../plugins/balancing/strategies.ts";
import type { AccountSnapshot, GatewayServices } from "../../src/plugin-host/api.ts";
import { mintTokens } from "../fakes/jwt.ts";
import type { TestGateway } from "../support/gateway.ts";
import { candidatesOf, DAY, seeded, weekly } from "./fixtures.ts";
import { type Harness, startHarness } from "./harness.ts";

let h: Harness;
let gw: TestGateway;
let services: GatewayServices;
beforeAll(async () => {
  h = await startHarness();
  ({ gw, services } = h);
});
afterAll(async () => {
  await gw.stop();
});

/** 60 choices through the gateway, and the same 60 computed afresh from the list, seeded alike. */
async function choicesAt(
  now: number,
): Promise<{ routed: string[]; fresh: string[]; all: readonly AccountSnapshot[] }> {
  const all = await services.accounts.list();
  const routed: string[] = [];
  const fresh: string[] = [];
  for (let seed = 1; seed <= 60; seed++) {
    routed.push(await h.routed({ now, random: seeded(seed) }));
    const c = chooseAccount(candidatesOf(all, now), {
      strategy: "capacity_weighted",
      now,
      random: seeded(seed),
      lastSelected: new Map(),
    });
    fresh.push(c!.accountId);
  }
  return { routed, fresh, all };
}

describe("the precomputed routing state", () => {
  test("is reused while the list is unchanged, and rebuilt for a new list", async () => {
    const now = Date.now();
    const all = await services.accounts.list();
    const state = RoutingState.of(all, now);
    expect(RoutingState.of(all, now + 1000)).toBe(state);
    expect(state.usable.map((a) => a.id).sort()).toEqual(["acc-a", "acc-b", "acc-c"]);
    await services.apply([{ type: "account.pause", accountId: "acc-b" }], { source: "test" });
    const after = await services.accounts.list();
    expect(after).not.toBe(all);
    expect(
      RoutingState.of(after, now)
        .usable.map((a) => a.id)
        .sort(),
    ).toEqual(["acc-a", "acc-c"]);
    await h.reactivateAll();
  });

  test("follows a pause, a cooldown and its end, a quota reading and a new account", async () => {
    const now = Date.now();
    const start = await choicesAt(now);
    expect(start.routed).toEqual(start.fresh);
    expect(new Set(start.routed)).toEqual(new Set(["acc-a", "acc-b", "acc-c"]));

    // Pause: the paused account is never chosen.
    await services.apply([{ type: "account.pause", accountId: "acc-c" }], { source: "test" });
    const paused = await choicesAt(now);
    expect(paused.routed).toEqual(paused.fresh);
    expect(paused.routed).not.toContain("acc-c");
    await h.reactivateAll();

    // Cooldown: out until it ends; the same list serves again once the clock passes its end.
    const until = now + 60_000;
    await services.apply([{ type: "account.cooldown", accountId: "acc-b", until }], { source: "test" });
    const cooling = await choicesAt(now);
    expect(cooling.routed).toEqual(cooling.fresh);
    expect(cooling.routed).not.toContain("acc-b");
    const back = await choicesAt(until);
    expect(back.all).toBe(cooling.all);
    expect(back.routed).toEqual(back.fresh);
    expect(back.routed).toContain("acc-b");
    await services.apply([{ type: "account.healthy", accountId: "acc-b" }], { source: "test" });

    // A quota reading: acc-c's week used up (stored usage: others are preferred).
    const [recorded] = await services.apply(
      [
        {
          type: "usage.record",
          accountId: "acc-c",
          primary: null,
          secondary: weekly(100, now, 6.5 * DAY),
          credits: null,
        },
      ],
      { source: "test" },
    );
    expect(recorded?.status).toBe("applied");
    const exhausted = await choicesAt(now);
    expect(exhausted.routed).toEqual(exhausted.fresh);
    expect(exhausted.routed).not.toContain("acc-c");

    // A new account (a login): it gets its share at once.
    const identity = {
      email: "new@example.test",
      chatgptAccountId: "chatgpt-new",
      chatgptUserId: "user-new",
      planType: "pro",
    };
    const created = await gw.running.gateway.accounts.upsertFromTokens(
      { ...mintTokens(identity, { expiresInSeconds: 86_400 }), refreshToken: "refresh-new" },
      { source: "login" },
    );
    expect(created.created).toBe(true);
    const grown = await choicesAt(now);
    expect(grown.all.map((a) => a.id)).toContain(created.id);
    expect(grown.routed).toEqual(grown.fresh);
    expect(grown.routed).toContain(created.id);
  });
});
