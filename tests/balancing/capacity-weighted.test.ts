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
