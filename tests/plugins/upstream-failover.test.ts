import { describe, expect, test } from "bun:test";
import {
  actionsFor,
  classify,
  type FailureInput,
  resetAtFor,
  retryHintSeconds,
} from "../../plugins/upstream-failover/table.ts";

const NOW = 1_800_000_000_000;
const base: FailureInput = {
  accountId: "acc",
  failureStreak: 0,
  httpStatus: 429,
  errorCode: null,
  errorType: null,
  message: null,
  transport: false,
  resetsAt: null,
  resetsInSeconds: null,
  now: NOW,
};
const f = (o: Partial<FailureInput>): FailureInput => ({ ...base, ...o });

describe("classify", () => {
  test.each([
    [{ errorCode: "rate_limit_exceeded" }, "rate_limit"],
    [{ errorCode: "usage_limit_reached" }, "rate_limit"],
    [{ httpStatus: 200, errorCode: null, errorType: "usage_limit_reached" }, "rate_limit"],
    [{ httpStatus: 429, errorCode: null }, "rate_limit"],
    [{ errorCode: "insufficient_quota" }, "quota"],
    [{ errorCode: "usage_not_included" }, "quota"],
    [{ errorCode: "quota_exceeded" }, "quota"],
    [{ httpStatus: 401, errorCode: "token_invalidated" }, "permanent"],
    [{ httpStatus: 403, errorCode: "account_deactivated" }, "permanent"],
    [{ httpStatus: null, errorCode: "refresh_token_reused" }, "permanent"],
    [{ httpStatus: 500, errorCode: null }, "transient"],
    [{ httpStatus: 503, errorCode: "something" }, "transient"],
    [{ httpStatus: null, errorCode: "server_is_overloaded" }, "transient"],
    [{ httpStatus: null, errorCode: "overloaded_error" }, "transient"],
    [{ httpStatus: null, errorCode: "transport_error", transport: true }, "transient"],
    [{ httpStatus: 400, errorCode: "x", message: "Selected model is at capacity" }, "transient"],
    [{ httpStatus: 401, errorCode: null }, "transient"],
    [{ httpStatus: 400, errorCode: "invalid_request_error" }, "client"],
    [{ httpStatus: 404, errorCode: "not_found" }, "client"],
  ] as const)("%j → %s", (o, want) => {
    expect(classify(f(o))).toBe(want);
  });
});

describe("retry hints", () => {
  test.each([
    ["Please try again in 1h2m3s.", 3723],
    ["Rate limit reached. Try again in 20s", 20],
    ["try again in 6m0s", 360],
    ["try again in 500ms", 0.5],
    ["Try again in 1.5s please", 1.5],
    ["no hint here", null],
    [null, null],
  ] as const)("%j → %j", (msg, want) => {
    expect(retryHintSeconds(msg)).toBe(want);
  });
});

describe("reset times", () => {
  const opts = { minSeconds: 30, fallbackSeconds: 0 };
  test.each([
    [
      "resets_at wins",
      { resetsAt: NOW + 7_200_000, resetsInSeconds: 60, message: "try again in 5s" },
      NOW + 7_200_000,
    ],
    [
      "resets_in_seconds next",
      { resetsAt: null, resetsInSeconds: 3600, message: "try again in 5s" },
      NOW + 3_600_000,
    ],
    ["hint next", { resetsAt: null, resetsInSeconds: null, message: "try again in 1h2m3s" }, NOW + 3_723_000],
    ["at least 30 s", { resetsAt: null, resetsInSeconds: null, message: "try again in 2s" }, NOW + 30_000],
    ["nothing: 30 s", { resetsAt: null, resetsInSeconds: null, message: null }, NOW + 30_000],
    [
      "resets_at in the past is ignored",
      { resetsAt: NOW - 1000, resetsInSeconds: 90, message: null },
      NOW + 90_000,
    ],
    [
      "absurd resets_at is ignored",
      { resetsAt: NOW + 400 * 86_400_000, resetsInSeconds: null, message: null },
      NOW + 30_000,
    ],
    ["rounded up to a second", { resetsAt: null, resetsInSeconds: 45.2, message: null }, NOW + 46_000],
  ] as const)("%s", (_name, input, want) => {
    expect(resetAtFor(input, NOW, opts)).toBe(want);
  });
  test("quota without any hint: an hour", () => {
    expect(
      resetAtFor({ resetsAt: null, resetsInSeconds: null, message: null }, NOW, {
        minSeconds: 30,
        fallbackSeconds: 3600,
      }),
    ).toBe(NOW + 3_600_000);
  });
});

describe("actions", () => {
  test("rate limit → account.rate_limit with the reset", () => {
    expect(actionsFor(f({ errorCode: "usage_limit_reached", resetsInSeconds: 3600 }))).toEqual([
      {
        type: "account.rate_limit",
        accountId: "acc",
        resetAt: NOW + 3_600_000,
        reason: "Upstream usage_limit_reached",
      },
    ]);
  });
  test("quota → account.quota_exceeded", () => {
    expect(actionsFor(f({ httpStatus: null, errorCode: "insufficient_quota" }))[0]).toMatchObject({
      type: "account.quota_exceeded",
      resetAt: NOW + 3_600_000,
    });
  });
  test("permanent → account.deactivate with the auth-refresh table's status and reason", () => {
    expect(actionsFor(f({ httpStatus: 401, errorCode: "token_expired" }))).toEqual([
      {
        type: "account.deactivate",
        accountId: "acc",
        status: "reauth_required",
        reason: "Authentication token expired - re-login required",
      },
    ]);
  });
  test("transient → account.cooldown by the core backoff table (3 in a row: 30 s, doubling to 300 s)", () => {
    expect(actionsFor(f({ httpStatus: 502, failureStreak: 3 }))).toEqual([
      { type: "account.cooldown", accountId: "acc", until: NOW + 60_000, reason: "Upstream HTTP 502" },
    ]);
    const until = (failureStreak: number) =>
      (actionsFor(f({ httpStatus: 503, failureStreak }))[0] as { until: number }).until - NOW;
    expect([0, 1, 2, 3, 10, 50].map(until)).toEqual([0, 0, 30_000, 60_000, 300_000, 300_000]);
  });
  test("client error → nothing", () => {
    expect(actionsFor(f({ httpStatus: 400, errorCode: "invalid_request_error" }))).toEqual([]);
  });
});
