import { describe, expect, test } from "bun:test";
import { windowsOf } from "../../plugins/balancing/capacity.ts";
import {
  capacityWeight,
  chooseAccount,
  MAX_PACE_BOOST,
  paceBoost,
  type RoutingStrategy,
  type SelectionContext,
} from "../../plugins/balancing/strategies.ts";
import type { AccountSnapshot } from "../../src/core/types.ts";
import { account, DAY, fiveHour, HOUR, seeded, T0, tally, weekly } from "./fixtures.ts";

function ctx(strategy: RoutingStrategy, over: Partial<SelectionContext> = {}): SelectionContext {
  return { strategy, now: T0, random: seeded(1), lastSelected: new Map(), ...over };
}

function draw(accounts: readonly AccountSnapshot[], n: number, over: Partial<SelectionContext> = {}) {
  const c = ctx("capacity_weighted", { random: seeded(42), ...over });
  return tally(Array.from({ length: n }, () => chooseAccount(accounts, c)!.accountId));
}

describe("deterministic strategies (table)", () => {
  const a = account("a", { secondary: weekly(50), primary: fiveHour(10) });
  const b = account("b", { secondary: weekly(20), primary: fiveHour(70) });
  const c = account("c", { secondary: weekly(20), primary: fiveHour(30) });
  const rows: [string, RoutingStrategy, AccountSnapshot[], Map<string, number>, string][] = [
    ["usage_weighted: least weekly used, then least 5h used", "usage_weighted", [a, b, c], new Map(), "c"],
    [
      "usage_weighted: equal usage → least recently selected",
      "usage_weighted",
      [account("x"), account("y")],
      new Map([["x", T0 - 10]]),
      "y",
    ],
    [
      "round_robin: never selected first, then oldest",
      "round_robin",
      [a, b, c],
      new Map([
        ["a", T0 - 100],
        ["c", T0 - 5],
      ]),
      "b",
    ],
    [
      "round_robin: all selected → least recently",
      "round_robin",
      [a, b, c],
      new Map([
        ["a", T0 - 100],
        ["b", T0 - 50],
        ["c", T0 - 500],
      ]),
      "c",
    ],
    ["fill_first: first in stable (id) order", "fill_first", [c, b, a], new Map(), "a"],
    [
      "fill_first: the drained one is skipped once stored usage says exhausted",
      "fill_first",
      [account("a", { secondary: weekly(100) }), b, c],
      new Map(),
      "b",
    ],
  ];
  test.each(rows)("%s", (_name, strategy, accounts, last, expected) => {
    expect(chooseAccount(accounts, ctx(strategy, { lastSelected: last }))?.accountId).toBe(expected);
  });

  test("round robin cycles through every account in turn", () => {
    const accounts = [account("a"), account("b"), account("c")];
    const last = new Map<string, number>();
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = chooseAccount(accounts, ctx("round_robin", { lastSelected: last, now: T0 + i }))!.accountId;
      last.set(id, T0 + i);
      order.push(id);
    }
    expect(order).toEqual(["a", "b", "c", "a", "b", "c"]);
  });
});

describe("pools before the strategy (every strategy)", () => {
  const strategies: RoutingStrategy[] = ["capacity_weighted", "usage_weighted", "round_robin", "fill_first"];

  test.each(strategies)("%s: burn_first accounts are used before normal ones", (s) => {
    const accounts = [account("a"), account("z", { routingPolicy: "burn_first", secondary: weekly(80) })];
    expect(chooseAccount(accounts, ctx(s))?.accountId).toBe("z");
  });

  test.each(strategies)("%s: preserve accounts only when nothing else is usable", (s) => {
    const keep = account("a", { routingPolicy: "preserve" });
    const busy = account("b", { secondary: weekly(95) });
    expect(chooseAccount([keep, busy], ctx(s))?.accountId).toBe("b");
    expect(chooseAccount([keep, { ...busy, status: "paused" }], ctx(s))?.accountId).toBe("a");
  });

  test.each(strategies)("%s: an account stored as exhausted comes after every other", (s) => {
    const burnt = account("a", { routingPolicy: "burn_first", secondary: weekly(100) });
    const fine = account("b", { routingPolicy: "preserve", secondary: weekly(10) });
    expect(chooseAccount([burnt, fine], ctx(s))?.accountId).toBe("b");
  });

  test.each(strategies)("%s: stored usage never refuses: all exhausted still yields a choice", (s) => {
    const accounts = [
      account("a", { secondary: weekly(100) }),
      account("b", { primary: fiveHour(100), secondary: weekly(30) }),
    ];
    expect(chooseAccount(accounts, ctx(s))).not.toBeNull();
  });

  test.each(strategies)("%s: accounts at their stream cap come last", (s) => {
    const accounts = [account("a"), account("b", { secondary: weekly(90) })];
    const inFlight = (id: string) => (id === "a" ? 8 : 0);
    expect(chooseAccount(accounts, ctx(s, { inFlight, maxStreams: 8 }))?.accountId).toBe("b");
    // All full: still a choice (the lease queue decides whether it waits or is refused).
    expect(chooseAccount(accounts, ctx(s, { inFlight: () => 8, maxStreams: 8 }))).not.toBeNull();
  });

  test.each(strategies)("%s: unusable candidates are never chosen", (s) => {
    const accounts = [
      account("a", { cooldownUntil: T0 + 1000 }),
      account("b", { status: "rate_limited", resetAt: T0 + 1000 }),
      account("c", { status: "paused" }),
    ];
    expect(chooseAccount(accounts, ctx(s))).toBeNull();
    expect(chooseAccount([...accounts, account("d", { secondary: weekly(99) })], ctx(s))?.accountId).toBe(
      "d",
    );
  });
});

describe("capacity_weighted", () => {
  test("weights are remaining weekly credits (plan capacity × unused fraction)", () => {
    // Behind on nothing (half used, most of the week left): no pace boost, so plain credits.
    const w = (plan: string, used: number) =>
      capacityWeight(account("x", { planType: plan, secondary: weekly(used, T0, 6.5 * DAY) }), T0);
    expect(w("pro", 50)).toBe(25200);
    expect(w("plus", 50)).toBe(3780);
    expect(w("prolite", 60)).toBeCloseTo(15120, 6);
    expect(w("plus", 100)).toBe(0);
  });

  test("distribution over 30 000 draws follows remaining capacity", () => {
    // Same reset time for all, so only capacity differs: 7560×0.5 : 7560×0.8 : 50400×0.9 = 3780 : 6048 : 45360.
    const accounts = [
      account("a", { planType: "plus", secondary: weekly(50, T0, 6.5 * DAY) }),
      account("b", { planType: "plus", secondary: weekly(20, T0, 6.5 * DAY) }),
      account("c", { planType: "pro", secondary: weekly(10, T0, 6.5 * DAY) }),
    ];
    const weights = accounts.map((a) => capacityWeight(a, T0));
    const total = weights.reduce((s, w) => s + w, 0);
    const n = 30_000;
    const counts = draw(accounts, n);
    accounts.forEach((a, i) => {
      const expected = (weights[i]! / total) * n;
      // Binomial standard deviation is below 90 here; 4σ keeps the seeded test honest and stable.
      expect(Math.abs((counts[a.id] ?? 0) - expected)).toBeLessThan(4 * Math.sqrt(expected));
    });
    expect(weights[0]! / weights[1]!).toBeCloseTo(3780 / 6048, 5);
  });

  test("the same seed gives the same sequence", () => {
    const accounts = [account("a"), account("b"), account("c")];
    const run = () => {
      const c = ctx("capacity_weighted", { random: seeded(7) });
      return Array.from({ length: 50 }, () => chooseAccount(accounts, c)!.accountId).join();
    };
    expect(run()).toBe(run());
  });

  test("an account whose 5-hour window is nearly used up is avoided while another has room", () => {
    const accounts = [
      account("a", { planType: "pro", primary: fiveHour(95), secondary: weekly(0) }),
      account("b", { planType: "plus", primary: fiveHour(20), secondary: weekly(90) }),
    ];
    expect(draw(accounts, 500)).toEqual({ b: 500 });
    // Both nearly used up: plain capacity weighting again.
    const both = [accounts[0]!, { ...accounts[1]!, primary: fiveHour(96) }];
    expect(Object.keys(draw(both, 500)).sort()).toEqual(["a", "b"]);
  });

  test("a 5-hour window that already reset does not count as used", () => {
    const stale = account("a", { primary: { usedPercent: 99, windowMinutes: 300, resetAt: T0 - 1 } });
    const other = account("b", { secondary: weekly(50) });
    expect(draw([stale, other], 2000).a ?? 0).toBeGreaterThan(1000);
  });

  test("credits that would expire unused pull traffic toward the sooner reset", () => {
    // Both unused; one week resets in a day, the other in 6.5 days.
    const soon = account("soon", { secondary: weekly(0, T0, 1 * DAY) });
    const late = account("late", { secondary: weekly(0, T0, 6.5 * DAY) });
    expect(paceBoost(windowsOf(soon, T0), T0)).toBeCloseTo(7, 5);
    expect(paceBoost(windowsOf(late, T0), T0)).toBeCloseTo(7 / 6.5, 5);
    const counts = draw([soon, late], 10_000);
    const share = (counts.soon ?? 0) / 10_000;
    expect(share).toBeGreaterThan(0.84);
    expect(share).toBeLessThan(0.89); // 7 / (7 + 1.077) = 0.867
  });

  test("no boost for an account that is ahead of its pace", () => {
    const ahead = account("a", { secondary: weekly(90, T0, 3.5 * DAY) });
    expect(paceBoost(windowsOf(ahead, T0), T0)).toBe(1);
  });

  test("the boost is capped (a window about to reset does not take everything)", () => {
    const lastMinutes = account("a", { secondary: weekly(0, T0, 10 * 60_000) });
    expect(paceBoost(windowsOf(lastMinutes, T0), T0)).toBe(MAX_PACE_BOOST);
  });

  test("no known capacity anywhere: least used, deterministically", () => {
    const accounts = [account("a", { secondary: weekly(100) }), account("b", { secondary: weekly(100) })];
    const b = { ...accounts[1]!, primary: fiveHour(10) };
    const a = { ...accounts[0]!, primary: fiveHour(50) };
    expect(chooseAccount([a, b], ctx("capacity_weighted"))?.accountId).toBe("b");
  });

  test("unknown usage counts as a full plan (new accounts get traffic)", () => {
    const counts = draw([account("new"), account("old", { secondary: weekly(50, T0, 6.9 * DAY) })], 3000);
    expect(counts.new!).toBeGreaterThan(counts.old!);
  });

  test("the hourly-resetting window of an account does not matter for the weekly pace", () => {
    const a = account("a", { primary: fiveHour(10, T0, HOUR), secondary: weekly(0, T0, 7 * DAY) });
    expect(paceBoost(windowsOf(a, T0), T0)).toBe(1);
  });
});
