import { describe, expect, test } from "bun:test";
import {
  classifyRefreshFailure,
  classifyUsageFailure,
  decideFromUsage,
} from "../../plugins/auth-refresh/classify.ts";
import { parseUsage } from "../../plugins/auth-refresh/usage-poller.ts";
import { permanentFailureCodes } from "../../src/core/failures.ts";
import type { AccountSnapshot } from "../../src/plugin-host/api.ts";
import { account as snapshot } from "../support/snapshot.ts";

const NOW = 1_900_000_000_000;
const account = (over: Partial<AccountSnapshot> = {}): AccountSnapshot =>
  snapshot("acc-1", { email: "a@b.c", chatgptAccountId: "acct", version: 3, ...over });
const failure = (over: Partial<Parameters<typeof classifyRefreshFailure>[0]> = {}) => ({
  httpStatus: 401,
  errorCode: null,
  errorType: null,
  message: null,
  transport: false,
  account: account(),
  trigger: "request" as const,
  now: NOW,
  ...over,
});

describe("refresh.failed classification", () => {
  test.each(Object.entries(permanentFailureCodes))("%s is permanent", (code, want) => {
    expect(classifyRefreshFailure(failure({ errorCode: code }))).toEqual([
      { type: "account.deactivate", accountId: "acc-1", status: want.status, reason: want.reason },
    ]);
  });

  test.each([
    ["503", { httpStatus: 503 }],
    ["timeout", { httpStatus: null, transport: true, errorCode: "timeout" }],
    ["network error", { httpStatus: null, transport: true, errorCode: "transport_error" }],
    ["unknown code", { httpStatus: 400, errorCode: "brand_new_code" }],
  ])("%s is transient: cooldown, no status change", (_n, over) => {
    const [a] = classifyRefreshFailure(failure(over));
    // The first transient failure only counts; the core's backoff table starts at the third in a row.
    expect(a).toMatchObject({ type: "account.cooldown", accountId: "acc-1", until: NOW });
  });

  test("the cooldown follows the core backoff table: 3 in a row → 30 s, doubling, capped at 300 s", () => {
    const until = (failureStreak: number) =>
      (
        classifyRefreshFailure(failure({ httpStatus: 503, account: account({ failureStreak }) }))[0] as {
          until: number;
        }
      ).until - NOW;
    expect([0, 1, 2, 3, 4, 50].map(until)).toEqual([0, 0, 30_000, 60_000, 120_000, 300_000]);
  });
});

describe("usage.failed classification", () => {
  const uf = (over: object) => ({
    httpStatus: 500,
    errorCode: null,
    errorType: null,
    message: null,
    transport: false,
    account: account(),
    now: NOW,
    ...over,
  });
  test.each([
    [
      "402",
      { httpStatus: 402, message: "Payment required" },
      "deactivated",
      "Usage API error: HTTP 402 - Payment required",
    ],
    ["404", { httpStatus: 404 }, "deactivated", "Usage API error: HTTP 404"],
    [
      "deactivated message",
      { httpStatus: 400, message: "Your OpenAI account has been deactivated" },
      "deactivated",
      "Usage API error: HTTP 400 - Your OpenAI account has been deactivated",
    ],
    [
      "permanent code",
      { httpStatus: 401, errorCode: "token_expired" },
      "reauth_required",
      "Authentication token expired - re-login required",
    ],
  ])("%s deactivates", (_n, over, status, reason) => {
    expect(classifyUsageFailure(uf(over))).toEqual([
      { type: "account.deactivate", accountId: "acc-1", status: status as "deactivated", reason },
    ]);
  });
  test.each([
    ["403", { httpStatus: 403, message: "Forbidden" }],
    ["401 without a permanent code", { httpStatus: 401 }],
    ["500", { httpStatus: 500 }],
    ["transport", { httpStatus: null, transport: true, errorCode: "timeout" }],
  ])("%s changes nothing", (_n, over) => {
    expect(classifyUsageFailure(uf(over))).toEqual([]);
  });
});

describe("usage.fetched decisions", () => {
  const w = (usedPercent: number, resetAt: number | null = NOW + 3600_000) => ({
    usedPercent,
    windowMinutes: 300,
    resetAt,
  });
  const ev = (over: object) => ({
    account: account(),
    primary: w(10),
    secondary: w(10),
    credits: null,
    now: NOW,
    ...over,
  });
  test("primary at 100% rate-limits until its reset", () => {
    expect(decideFromUsage(ev({ primary: w(100) }))).toEqual([
      {
        type: "account.rate_limit",
        accountId: "acc-1",
        resetAt: NOW + 3600_000,
        reason: "Primary (5 h) usage window exhausted",
      },
    ]);
  });
  test("secondary at 100% is quota_exceeded unless credits are usable", () => {
    expect(decideFromUsage(ev({ secondary: w(100) }))[0]).toMatchObject({
      type: "account.quota_exceeded",
      resetAt: NOW + 3600_000,
    });
    expect(
      decideFromUsage(
        ev({ secondary: w(100), credits: { hasCredits: true, unlimited: false, balance: 12 } }),
      ),
    ).toEqual([]);
    expect(
      decideFromUsage(
        ev({ secondary: w(100), credits: { hasCredits: false, unlimited: true, balance: null } }),
      ),
    ).toEqual([]);
    expect(
      decideFromUsage(
        ev({ secondary: w(100), credits: { hasCredits: true, unlimited: false, balance: 0 } }),
      )[0]?.type,
    ).toBe("account.quota_exceeded");
  });
  test("a missing reset holds for the window length; a reset already past holds briefly", () => {
    expect(decideFromUsage(ev({ primary: w(100, null) }))[0]).toMatchObject({ resetAt: NOW + 300 * 60_000 });
    expect(decideFromUsage(ev({ primary: w(100, NOW - 1) }))[0]).toMatchObject({ resetAt: NOW + 60_000 });
  });
  test("a rate-limited account whose reset has passed is reactivated; before the reset it is not", () => {
    expect(decideFromUsage(ev({ account: account({ status: "rate_limited", resetAt: NOW - 1 }) }))).toEqual([
      { type: "account.reactivate", accountId: "acc-1", reason: "Usage window reset" },
    ]);
    expect(
      decideFromUsage(ev({ account: account({ status: "rate_limited", resetAt: NOW + 60_000 }) })),
    ).toEqual([]);
    expect(decideFromUsage(ev({}))).toEqual([]);
  });
});

describe("parseUsage", () => {
  test("windows, reset times and credits from a /wham/usage answer", () => {
    const u = parseUsage(
      {
        rate_limit: {
          primary_window: { used_percent: 42.5, limit_window_seconds: 18_000, reset_at: 1_900_000_100 },
          secondary_window: { used_percent: 7, limit_window_seconds: 604_800, reset_after_seconds: 60 },
        },
        credits: { has_credits: true, unlimited: false, balance: "12.50" },
      },
      NOW,
    );
    expect(u).toEqual({
      primary: { usedPercent: 42.5, windowMinutes: 300, resetAt: 1_900_000_100_000 },
      secondary: { usedPercent: 7, windowMinutes: 10_080, resetAt: NOW + 60_000 },
      credits: { hasCredits: true, unlimited: false, balance: 12.5 },
    });
    expect(parseUsage({ nothing: true }, NOW)).toBeNull();
  });
});
