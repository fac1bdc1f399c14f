import { describe, expect, test } from "bun:test";
import { planCapacity, remainingCredits, windowsOf } from "../../plugins/balancing/capacity.ts";
import {
  accountHealth,
  BACKOFF_MAX_SECONDS,
  backoffSeconds,
  backoffUntil,
  isUsable,
  usableAgainAt,
} from "../../plugins/balancing/health.ts";
import { account, DAY, fiveHour, T0, weekly } from "./fixtures.ts";

describe("plan capacity table", () => {
  test.each([
    ["plus", 225, 7560],
    ["team", 225, 7560],
    ["business", 225, 7560],
    ["edu", 225, 7560],
    ["education", 225, 7560],
    ["prolite", 1125, 37800],
    ["pro", 1500, 50400],
    ["enterprise", 1500, 50400],
    ["PRO", 1500, 50400],
    ["free", 0, 1134],
    ["go", 0, 1134],
    [null, 0, 1134],
    ["something_new", 0, 1134],
  ] as const)("%p → %d / %d credits", (plan, short, long) => {
    const c = planCapacity(plan);
    expect([c.short, c.long]).toEqual([short, long]);
  });

  test("free is a monthly plan, the others weekly", () => {
    expect(planCapacity("free").longWindowMinutes).toBe(30 * 24 * 60);
    expect(planCapacity("plus").longWindowMinutes).toBe(7 * 24 * 60);
  });
});

describe("usage windows", () => {
  test("remaining credits = plan capacity × (1 − weekly used fraction)", () => {
    expect(remainingCredits(account("a", { planType: "pro", secondary: weekly(25) }), T0)).toBe(37800);
    expect(remainingCredits(account("a", { planType: "plus", secondary: weekly(100) }), T0)).toBe(0);
    expect(remainingCredits(account("a", { planType: "plus" }), T0)).toBe(7560);
  });

  test("a window whose reset passed counts as unused, whatever the stored sample says", () => {
    const a = account("a", { secondary: { usedPercent: 90, windowMinutes: 10080, resetAt: T0 - 1 } });
    expect(windowsOf(a, T0).long).toMatchObject({ used: 0, resetAt: null });
    expect(remainingCredits(a, T0)).toBe(7560);
  });

  test("a lone weekly-or-longer primary window is the long window (free plans report it so)", () => {
    const monthly = { usedPercent: 50, windowMinutes: 43200, resetAt: T0 + 10 * DAY };
    const w = windowsOf(account("f", { planType: "free", primary: monthly }), T0);
    expect(w.short).toBeNull();
    expect(w.long.used).toBe(0.5);
    expect(w.long.capacity).toBe(1134);
  });

  test("plans without a short window ignore a stored one", () => {
    const w = windowsOf(account("f", { planType: "free", primary: fiveHour(99), secondary: weekly(1) }), T0);
    expect(w.short).toBeNull();
  });
});

describe("backoff arithmetic", () => {
  test.each([
    [0, 0],
    [1, 0],
    [2, 0],
    [3, 30],
    [4, 60],
    [5, 120],
    [6, 240],
    [7, 300],
    [8, 300],
    [1000, 300],
    [-1, 0],
    [Number.NaN, 0],
  ])("after %p failures in a row: %p s", (streak, seconds) => {
    expect(backoffSeconds(streak)).toBe(seconds);
  });

  test("never above the cap", () => {
    for (let s = 0; s < 100; s++) expect(backoffSeconds(s)).toBeLessThanOrEqual(BACKOFF_MAX_SECONDS);
  });

  test("backoff ends the backoff time after the failure", () => {
    expect(backoffUntil(2, T0)).toBeNull();
    expect(backoffUntil(3, T0)).toBe(T0 + 30_000);
    expect(backoffUntil(5, T0)).toBe(T0 + 120_000);
  });
});

describe("usability", () => {
  test.each([
    ["active", null, null, true],
    ["active", null, T0 + 1, false],
    ["active", null, T0, true],
    ["rate_limited", T0 + 1, null, false],
    ["rate_limited", T0, null, true],
    ["quota_exceeded", T0 - 1000, null, true],
    ["quota_exceeded", T0 + 60_000, null, false],
    ["rate_limited", T0 - 1, T0 + 5, false],
    ["paused", null, null, false],
    ["reauth_required", null, null, false],
    ["deactivated", null, null, false],
  ] as const)("%s, reset %p, cooldown %p → %p", (status, resetAt, cooldownUntil, usable) => {
    expect(isUsable(account("a", { status, resetAt, cooldownUntil }), T0)).toBe(usable);
  });

  test("a rate limit ends exactly at its reset time, to the millisecond", () => {
    const a = account("a", { status: "rate_limited", resetAt: T0 + 42_000 });
    expect(isUsable(a, T0 + 41_999)).toBe(false);
    expect(isUsable(a, T0 + 42_000)).toBe(true);
    expect(usableAgainAt(a, T0)).toBe(T0 + 42_000);
  });

  test("stored usage at 100 % never makes an account unusable", () => {
    const a = account("a", { primary: fiveHour(100), secondary: weekly(100) });
    expect(isUsable(a, T0)).toBe(true);
  });

  test("usableAgainAt: the later of reset and backoff; null for manual statuses", () => {
    const a = account("a", { status: "rate_limited", resetAt: T0 + 10_000, cooldownUntil: T0 + 20_000 });
    expect(usableAgainAt(a, T0)).toBe(T0 + 20_000);
    expect(usableAgainAt(account("p", { status: "paused" }), T0)).toBeNull();
  });

  test("account health shows backoff and in-flight streams", () => {
    const a = account("a", { failureStreak: 4, cooldownUntil: T0 + 60_000 });
    const h = accountHealth(a, { inFlight: () => 3, queued: () => 1 }, T0);
    expect(h).toEqual({
      accountId: "a",
      backoffUntil: T0 + 60_000,
      failureStreak: 4,
      inFlight: 3,
      queued: 1,
      usable: false,
    });
    expect(accountHealth(a, { inFlight: () => 0 }, T0 + 60_000).backoffUntil).toBeNull();
  });
});
