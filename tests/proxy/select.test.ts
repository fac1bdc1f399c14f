import { describe, expect, test } from "bun:test";
import type { AccountSnapshot } from "../../src/core/types.ts";
import { isUsable, noAccountError } from "../../src/proxy/select.ts";
import { account } from "../support/snapshot.ts";

const NOW = 1_800_000_000_000;
const acc = (o: Partial<AccountSnapshot>): AccountSnapshot => account("x", o);

describe("usable accounts", () => {
  test.each([
    [{}, true],
    [{ cooldownUntil: NOW + 1 }, false],
    [{ cooldownUntil: NOW - 1 }, true],
    [{ status: "rate_limited" as const, resetAt: NOW + 1 }, false],
    [{ status: "rate_limited" as const, resetAt: NOW }, true],
    [{ status: "quota_exceeded" as const, resetAt: NOW - 5 }, true],
    [{ status: "quota_exceeded" as const, resetAt: null }, false],
    [{ status: "paused" as const }, false],
    [{ status: "reauth_required" as const }, false],
    [{ status: "deactivated" as const }, false],
  ])("%j → %s", (o, want) => {
    expect(isUsable(acc(o), NOW)).toBe(want);
  });
});

describe("no usable account", () => {
  test("none configured → 503 no_accounts", () => {
    expect(noAccountError([], NOW, null)).toMatchObject({ status: 503, code: "no_accounts" });
  });
  test("every account in play limited → 429 usage_limit_reached with the earliest reset (paused ones ignored)", () => {
    const e = noAccountError(
      [
        acc({ id: "a", status: "rate_limited", resetAt: NOW + 60_000 }),
        acc({ id: "b", status: "quota_exceeded", resetAt: NOW + 30_500 }),
        acc({ id: "c", status: "paused" }),
      ],
      NOW,
      null,
    );
    expect(e).toMatchObject({ status: 429, code: "usage_limit_reached", type: "usage_limit_reached" });
    expect(e.extra.resets_at).toBe(Math.ceil((NOW + 30_500) / 1000));
    expect(e.headers["retry-after"]).toBe("31");
  });
  test("one account only cooling down → not a usage limit: 503 no_accounts", () => {
    const e = noAccountError(
      [
        acc({ id: "a", status: "rate_limited", resetAt: NOW + 60_000 }),
        acc({ id: "b", cooldownUntil: NOW + 100 }),
      ],
      NOW,
      null,
    );
    expect(e).toMatchObject({ status: 503, code: "no_accounts" });
  });
  test("every account in backoff → 503 no_accounts with Retry-After until the earliest is back", () => {
    const e = noAccountError(
      [
        acc({ id: "a", cooldownUntil: NOW + 12_200 }),
        acc({ id: "b", cooldownUntil: NOW + 40_000 }),
        acc({ id: "c", status: "rate_limited", resetAt: NOW + 90_000 }),
        acc({ id: "d", status: "paused" }),
      ],
      NOW,
      null,
    );
    expect(e).toMatchObject({ status: 503, code: "no_accounts" });
    expect(e.headers["retry-after"]).toBe("13");
    // One usable account among them (it failed this request): the request's own failure wins.
    const usable = noAccountError([acc({ id: "a", cooldownUntil: NOW + 1000 }), acc({ id: "b" })], NOW, null);
    expect(usable.headers["retry-after"]).toBeUndefined();
  });
});
