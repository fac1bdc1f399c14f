import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { AccountStatus } from "../../src/core/types.ts";
import type { AccountAction } from "../../src/plugin-host/actions.ts";
import { ActionApplier } from "../../src/plugin-host/apply.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
let store: Store;
let applier: ActionApplier;
const NOW = 1_800_000_000_000;

async function seed(status: AccountStatus, extra: Record<string, unknown> = {}) {
  await store.db
    .insertInto("accounts")
    .values({ id: "a1", codex_installation_id: "inst-1", status, created_at: 1, updated_at: 1, ...extra })
    .execute();
}
const row = () =>
  store.db.selectFrom("accounts").selectAll().where("id", "=", "a1").executeTakeFirstOrThrow();
const events = () =>
  store.db.selectFrom("account_events").selectAll().where("account_id", "=", "a1").execute();

beforeEach(async () => {
  store = await openMigratedStore({ kind: "sqlite", path: ":memory:" });
  applier = new ActionApplier(store.db, quiet, () => NOW);
});
afterEach(async () => {
  await store.close();
});

const deactivate: AccountAction = {
  type: "account.deactivate",
  accountId: "a1",
  status: "reauth_required",
  reason: "Authentication token expired - re-login required",
};
const rateLimit: AccountAction = {
  type: "account.rate_limit",
  accountId: "a1",
  resetAt: NOW + 3_600_000,
  reason: "usage_limit_reached",
};
const quota: AccountAction = { type: "account.quota_exceeded", accountId: "a1", resetAt: NOW + 86_400_000 };
const cooldown: AccountAction = { type: "account.cooldown", accountId: "a1", until: NOW + 30_000 };
const reactivate: AccountAction = { type: "account.reactivate", accountId: "a1" };
const pause: AccountAction = { type: "account.pause", accountId: "a1" };

// [from status, action, expected result, expected status after]
const table: [AccountStatus, AccountAction, string, AccountStatus][] = [
  ["active", deactivate, "applied", "reauth_required"],
  ["rate_limited", deactivate, "applied", "reauth_required"],
  ["paused", deactivate, "applied", "reauth_required"],
  ["reauth_required", deactivate, "noop", "reauth_required"],
  ["deactivated", deactivate, "not_applicable", "deactivated"],
  ["reauth_required", { ...deactivate, status: "deactivated" } as AccountAction, "applied", "deactivated"],
  ["active", rateLimit, "applied", "rate_limited"],
  ["rate_limited", rateLimit, "applied", "rate_limited"],
  ["paused", rateLimit, "not_applicable", "paused"],
  ["reauth_required", rateLimit, "not_applicable", "reauth_required"],
  ["quota_exceeded", rateLimit, "not_applicable", "quota_exceeded"],
  ["active", quota, "applied", "quota_exceeded"],
  ["rate_limited", quota, "applied", "quota_exceeded"],
  ["deactivated", quota, "not_applicable", "deactivated"],
  ["active", cooldown, "applied", "active"],
  ["paused", cooldown, "not_applicable", "paused"],
  ["rate_limited", reactivate, "applied", "active"],
  ["quota_exceeded", reactivate, "applied", "active"],
  ["paused", reactivate, "applied", "active"],
  ["active", reactivate, "noop", "active"],
  ["reauth_required", reactivate, "not_applicable", "reauth_required"],
  ["deactivated", reactivate, "applied", "active"],
  ["active", pause, "applied", "paused"],
  ["paused", pause, "noop", "paused"],
  ["reauth_required", pause, "not_applicable", "reauth_required"],
];

describe("action applier: the account state table", () => {
  for (const [from, action, result, after] of table) {
    test(`${action.type}${action.type === "account.deactivate" ? `(${action.status})` : ""} from ${from} → ${result}, ${after}`, async () => {
      await seed(from);
      const [r] = await applier.apply([action], { source: "test" });
      expect(r?.status).toBe(result as never);
      const acc = await row();
      expect(acc.status).toBe(after);
      const ev = await events();
      if (result === "applied" && action.type !== "account.healthy") {
        expect(ev.length).toBe(1);
        expect(ev[0]).toMatchObject({
          action: action.type,
          from_status: from,
          to_status: after,
          source: "test",
          at: NOW,
        });
        expect(acc.version).toBe(1);
      } else {
        expect(ev.length).toBe(0);
        expect(acc.version).toBe(0);
      }
    });
  }
});

describe("action applier: effects", () => {
  test("deactivate stores the reason and clears blocks", async () => {
    await seed("rate_limited", { reset_at: NOW + 5, cooldown_until: NOW + 5 });
    await applier.apply([deactivate], {
      source: "refresh.failed",
      plugins: ["codex-lb.auth-refresh"],
      requestId: "req-9",
    });
    const acc = await row();
    expect(acc).toMatchObject({
      status: "reauth_required",
      status_reason: deactivate.reason,
      reset_at: null,
      cooldown_until: null,
      blocked_at: NOW,
    });
    const [ev] = await events();
    expect(ev).toMatchObject({
      reason: deactivate.reason,
      plugin: "codex-lb.auth-refresh",
      request_id: "req-9",
      source: "refresh.failed",
    });
  });

  test("cooldown keeps the later deadline and counts the streak; healthy clears it without an event row", async () => {
    await seed("active", { cooldown_until: NOW + 60_000, failure_streak: 2 });
    await applier.apply([cooldown], { source: "upstream.failed" });
    expect(await row()).toMatchObject({ cooldown_until: NOW + 60_000, failure_streak: 3 });
    const [r] = await applier.apply([{ type: "account.healthy", accountId: "a1" }], {
      source: "request.completed",
    });
    expect(r?.status).toBe("applied");
    expect(await row()).toMatchObject({ cooldown_until: null, failure_streak: 0 });
    expect((await events()).map((e) => e.action)).toEqual(["account.cooldown"]);
  });

  test("compare-and-set: a decision made on an old version applies nothing", async () => {
    await seed("active");
    await store.db.updateTable("accounts").set({ version: 5 }).execute();
    const [stale] = await applier.apply([deactivate], { source: "test", versions: new Map([["a1", 4]]) });
    expect(stale?.status).toBe("stale");
    const [explicit] = await applier.apply([{ ...deactivate, expectedVersion: 3 }], { source: "test" });
    expect(explicit?.status).toBe("stale");
    expect((await row()).status).toBe("active");
    expect(await events()).toEqual([]);
    const [fresh] = await applier.apply([deactivate], { source: "test", versions: new Map([["a1", 5]]) });
    expect(fresh?.status).toBe("applied");
  });

  test("several actions decided on one snapshot compose in one batch", async () => {
    await seed("active");
    const results = await applier.apply([cooldown, rateLimit], {
      source: "test",
      versions: new Map([["a1", 0]]),
    });
    expect(results.map((r) => r.status)).toEqual(["applied", "applied"]);
    expect(await row()).toMatchObject({ status: "rate_limited", version: 2, failure_streak: 1 });
  });

  test("unknown accounts and invalid actions are reported, not thrown", async () => {
    const results = await applier.apply(
      [
        { ...deactivate, accountId: "nope" },
        { type: "account.rate_limit", accountId: "a1", resetAt: -1, reason: "x" } as AccountAction,
      ],
      { source: "test" },
    );
    expect(results.map((r) => r.status)).toEqual(["missing", "invalid"]);
  });

  test("request actions are not store actions", async () => {
    await seed("active");
    expect(await applier.apply([{ type: "route.account", accountId: "a1" }], { source: "test" })).toEqual([]);
  });

  test("listeners hear about committed changes only", async () => {
    await seed("active");
    const heard: number[] = [];
    applier.onApplied((r) => heard.push(r.length));
    await applier.apply([reactivate], { source: "test" });
    await applier.apply([pause], { source: "test" });
    expect(heard).toEqual([1]);
  });
});
