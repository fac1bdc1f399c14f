import { afterEach, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { type AccountsWorld, identity, startAccountsWorld } from "../support/accounts.ts";

const TOKEN_EXPIRED = {
  error: {
    code: "token_expired",
    message: "Provided authentication token is expired. Please try signing in again.",
  },
};

let w: AccountsWorld | null = null;
/** The gateway's clock: the tests move it forward instead of sleeping. */
let clock: FakeClock;
afterEach(async () => {
  await w?.stop();
  w = null;
});

/** A world whose usage poller runs every 0.3 s (the background refresh pass stays out of the way). */
async function world() {
  clock = new FakeClock(Date.now());
  w = await startAccountsWorld({ env: { CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "0.3" }, clock });
  return w;
}

/**
 * Moves the gateway's clock forward by `ms` in 10 ms steps; between steps the real HTTP and store
 * work a timer started (a usage fetch, a refresh) gets a moment of real time to finish.
 */
async function pass(ms: number) {
  for (let t = 0; t < ms; t += 10) {
    await clock.advance(Math.min(10, ms - t));
    await Bun.sleep(1);
  }
}

/** Moves the clock until `fn` holds; at most `timeoutMs` of gateway time (and 10 s of real time). */
async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 4_000) {
  const end = clock.now() + timeoutMs;
  const realEnd = performance.now() + 10_000;
  while (clock.now() < end && performance.now() < realEnd) {
    if (await fn()) return;
    await pass(20);
  }
  if (await fn()) return;
  throw new Error(`timed out waiting for ${what}`);
}

describe("usage polling", () => {
  test("each account's /wham/usage is fetched, staggered, and stored as snapshots shown by GET /api/accounts", async () => {
    const w = await world();
    w.usage.primary = { usedPercent: 42.5, windowSeconds: 18_000, resetAt: 1_900_000_000 };
    w.usage.secondary = { usedPercent: 7, windowSeconds: 604_800, resetAt: 1_900_500_000 };
    const a = w.auth.issue(identity("poll"));
    const b = w.auth.issue(identity("poll"));
    const idA = await w.importTokens(a);
    const idB = await w.importTokens(b);
    await until("both polled", () =>
      [a, b].every((x) => w.usage.seen.some((s) => s.accessToken === x.accessToken)),
    );
    const view = await w.account(idA);
    expect(view.usage).toEqual({
      primary: { usedPercent: 42.5, windowMinutes: 300, resetAt: 1_900_000_000_000 },
      secondary: { usedPercent: 7, windowMinutes: 10_080, resetAt: 1_900_500_000_000 },
    });
    expect((await w.account(idB)).usage.primary?.usedPercent).toBe(42.5);
    const seenA = w.usage.seen.find((s) => s.accessToken === a.accessToken)!;
    const seenB = w.usage.seen.find((s) => s.accessToken === b.accessToken)!;
    expect(seenA.accountId).toBe(view.chatgptAccountId);
    // Staggered: the two accounts are not fetched at the same moment.
    expect(Math.abs(seenA.at - seenB.at)).toBeGreaterThanOrEqual(80);
    // About once per interval per account, not in a tight loop.
    await pass(900);
    const countA = w.usage.seen.filter((s) => s.accessToken === a.accessToken).length;
    expect(countA).toBeGreaterThanOrEqual(2);
    expect(countA).toBeLessThanOrEqual(6);
    const snaps = await w.gw.running.store.db
      .selectFrom("usage_snapshots")
      .selectAll()
      .where("account_id", "=", idA)
      .execute();
    expect(snaps.some((s) => s.window === "primary" && s.used_percent === 42.5 && s.credits_has === 0)).toBe(
      true,
    );
  });

  test("paused accounts are not polled", async () => {
    const w = await world();
    const t = w.auth.issue(identity("paused"));
    const id = await w.importTokens(t);
    await fetch(`${w.gw.url}/api/accounts/${id}/pause`, { method: "POST" });
    const other = w.auth.issue(identity("active"));
    await w.importTokens(other);
    await until(
      "the active one polled twice",
      () => w.usage.seen.filter((s) => s.accessToken === other.accessToken).length >= 2,
    );
    expect(w.usage.seen.some((s) => s.accessToken === t.accessToken)).toBe(false);
  });

  test("seed regression on the background path: refresh 401 token_expired → reauth_required, never polled again until re-import", async () => {
    const w = await world();
    const who = identity("bgseed");
    const bundle = w.auth.issue(who, { expiresInSeconds: 60 });
    w.auth.state.onRefresh = (rt) =>
      rt === bundle.refreshToken ? Response.json(TOKEN_EXPIRED, { status: 401 }) : undefined;
    const id = await w.importTokens(bundle);
    await until("reauth_required", async () => (await w.account(id)).status === "reauth_required");
    const view = await w.account(id);
    expect(view.statusReason).toBe("Authentication token expired - re-login required");
    const events = (
      (await (await fetch(`${w.gw.url}/api/accounts/${id}/events`)).json()) as {
        items: Record<string, unknown>[];
      }
    ).items;
    expect(events[0]).toMatchObject({
      action: "account.deactivate",
      toStatus: "reauth_required",
      source: "refresh.failed",
      reason: "Authentication token expired - re-login required",
    });
    expect(
      w.gw
        .logs()
        .some((l) => l.msg === "token refresh failed" && l.trigger === "usage" && l.accountId === id),
    ).toBe(true);
    const calls = w.auth.state.refreshCalls;
    await pass(700);
    expect(w.auth.state.refreshCalls).toBe(calls);
    expect(w.usage.seen.some((s) => s.accessToken === bundle.accessToken)).toBe(false);
    expect((await w.gw.running.gateway.services.accounts.get(id))!.status).toBe("reauth_required");
    // A new login (here: import) of the same identity makes it active and polled again.
    w.auth.state.onRefresh = null;
    const fresh = w.auth.issue(who);
    expect(await w.importTokens(fresh)).toBe(id);
    expect((await w.account(id)).status).toBe("active");
    await until("polled again", () => w.usage.seen.some((s) => s.accessToken === fresh.accessToken));
    for (const t of w.auth.state.issued) expect(w.gw.logText()).not.toContain(t);
  });

  test("a usage 401 forces one refresh and one retry with the new token", async () => {
    const w = await world();
    const bundle = w.auth.issue(identity("u401"));
    w.usage.respond = (token) =>
      token === bundle.accessToken
        ? Response.json({ error: { message: "unauthorized" } }, { status: 401 })
        : undefined;
    const id = await w.importTokens(bundle);
    await until("snapshot stored", async () => (await w.account(id)).usage.primary !== null);
    expect(w.auth.state.refreshCalls).toBe(1);
    expect(w.usage.seen.filter((s) => s.accessToken === bundle.accessToken)).toHaveLength(1);
    expect((await w.account(id)).status).toBe("active");
  });

  test("402 deactivates; 403 does not", async () => {
    const w = await world();
    const paid = w.auth.issue(identity("u402"));
    const forbidden = w.auth.issue(identity("u403"));
    w.usage.respond = (token) =>
      token === paid.accessToken
        ? Response.json({ detail: "x", error: { message: "Payment required" } }, { status: 402 })
        : token === forbidden.accessToken
          ? Response.json({ error: { message: "Forbidden" } }, { status: 403 })
          : undefined;
    const idPaid = await w.importTokens(paid);
    const idForbidden = await w.importTokens(forbidden);
    await until("deactivated", async () => (await w.account(idPaid)).status === "deactivated");
    expect((await w.account(idPaid)).statusReason).toBe("Usage API error: HTTP 402 - Payment required");
    await until("403 seen", () => w.usage.seen.some((s) => s.accessToken === forbidden.accessToken));
    await pass(100);
    expect((await w.account(idForbidden)).status).toBe("active");
  });

  test("primary at 100% rate-limits until the reset; after the reset the account is active again", async () => {
    const w = await world();
    const resetAt = Math.ceil(clock.now() / 1000) + 1;
    w.usage.primary = { usedPercent: 100, resetAt };
    const id = await w.importTokens(w.auth.issue(identity("rl")));
    await until("rate_limited", async () => (await w.account(id)).status === "rate_limited");
    expect((await w.account(id)).resetAt).toBe(resetAt * 1000);
    w.usage.primary = { usedPercent: 3 };
    await until("active again", async () => (await w.account(id)).status === "active", 5_000);
    const events = (
      (await (await fetch(`${w.gw.url}/api/accounts/${id}/events`)).json()) as {
        items: { action: string; source: string }[];
      }
    ).items;
    expect(events.slice(0, 2).map((e) => [e.action, e.source])).toEqual([
      ["account.reactivate", "usage.fetched"],
      ["account.rate_limit", "usage.fetched"],
    ]);
  });

  test("secondary at 100% without credits is quota_exceeded", async () => {
    const w = await world();
    w.usage.secondary = { usedPercent: 100 };
    const id = await w.importTokens(w.auth.issue(identity("qe")));
    await until("quota_exceeded", async () => (await w.account(id)).status === "quota_exceeded");
  });
});
