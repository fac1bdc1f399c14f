import { describe, expect, test } from "bun:test";
import {
  chooseAccount,
  type RoutingStrategy,
  type SelectionContext,
} from "../../plugins/balancing/strategies.ts";
import type { AccountSnapshot } from "../../src/core/types.ts";
import { account, fiveHour, seeded, T0, weekly } from "./fixtures.ts";

function ctx(strategy: RoutingStrategy, over: Partial<SelectionContext> = {}): SelectionContext {
  return { strategy, now: T0, random: seeded(1), lastSelected: new Map(), ...over };
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
