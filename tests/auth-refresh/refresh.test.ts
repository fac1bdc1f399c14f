import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { FakeClock } from "../../src/core/clock.ts";
import { GatewayError } from "../../src/core/errors.ts";
import type { CredentialsProvider } from "../../src/plugin-host/api.ts";
import { type AccountsWorld, identity, startAccountsWorld } from "../support/accounts.ts";

const TOKEN_EXPIRED = {
  error: {
    code: "token_expired",
    message: "Provided authentication token is expired. Please try signing in again.",
  },
};

let w: AccountsWorld;
let creds: CredentialsProvider;
beforeAll(async () => {
  w = await startAccountsWorld({
    env: {
      CODEX_LB_REFRESH_TIMEOUT_SECONDS: "0.3",
      CODEX_LB_PLUGINS: join(import.meta.dir, "../../plugins/examples/custom-refresh-codes/index.ts"),
    },
  });
  creds = w.gw.running.gateway.services.provider("credentials");
});
afterAll(async () => {
  await w.stop();
});

const expiringAccount = (label: string) => w.expiringAccount(label);
const events = (id: string) => w.events(id);

describe("refresh on use", () => {
  test("a token near expiry is refreshed once and the new token is served and stored", async () => {
    const { id, bundle } = await expiringAccount("fresh");
    const before = w.auth.state.refreshCalls;
    const c = await creds.get(id);
    expect(w.auth.state.refreshCalls).toBe(before + 1);
    expect(c.accessToken).not.toBe(bundle.accessToken);
    expect(c.chatgptAccountId).toStartWith("acct-fresh-");
    expect(c.installationId).toMatch(/^[0-9a-f-]{36}$/);
    // Now fresh: no second refresh.
    expect((await creds.get(id)).accessToken).toBe(c.accessToken);
    expect(w.auth.state.refreshCalls).toBe(before + 1);
    const view = await w.account(id);
    expect(view.accessTokenExpiresAt!).toBeGreaterThan(Date.now() + 30 * 60_000);
  });

  test("a last refresh older than 8 days triggers a refresh even with a valid access token", async () => {
    const bundle = w.auth.issue(identity("old"));
    const id = await w.importTokens(bundle, new Date(Date.now() - 9 * 86_400_000).toISOString());
    const before = w.auth.state.refreshCalls;
    await creds.get(id);
    expect(w.auth.state.refreshCalls).toBe(before + 1);
  });

  test("forceRefresh (after an upstream 401) refreshes a fresh token at once", async () => {
    const bundle = w.auth.issue(identity("force"));
    const id = await w.importTokens(bundle);
    const before = w.auth.state.refreshCalls;
    const c = await creds.get(id, { forceRefresh: true });
    expect(w.auth.state.refreshCalls).toBe(before + 1);
    expect(c.accessToken).not.toBe(bundle.accessToken);
  });

  test("20 concurrent gets on an account that needs a refresh cause exactly one refresh call", async () => {
    const { id } = await expiringAccount("crowd");
    w.auth.state.refreshDelayMs = 50;
    const before = w.auth.state.refreshCalls;
    try {
      const all = await Promise.all(Array.from({ length: 20 }, () => creds.get(id)));
      expect(w.auth.state.refreshCalls).toBe(before + 1);
      expect(new Set(all.map((c) => c.accessToken)).size).toBe(1);
    } finally {
      w.auth.state.refreshDelayMs = 0;
    }
    expect((await w.account(id)).status).toBe("active");
  });
});

describe("seed regression: refresh answering 401 token_expired (request path)", () => {
  test("reauth_required with the table's reason, an event, no further use until a new import", async () => {
    const who = identity("seed");
    const bundle = w.auth.issue(who, { expiresInSeconds: 60 });
    const id = await w.importTokens(bundle);
    w.auth.state.onRefresh = (rt) =>
      rt === bundle.refreshToken ? Response.json(TOKEN_EXPIRED, { status: 401 }) : undefined;
    try {
      const err = await creds.get(id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe("account_unusable");
      const view = await w.account(id);
      expect(view.status).toBe("reauth_required");
      expect(view.statusReason).toBe("Authentication token expired - re-login required");
      const ev = (await events(id))[0]!;
      expect(ev).toMatchObject({
        action: "account.deactivate",
        toStatus: "reauth_required",
        source: "refresh.failed",
        plugin: "codex-lb.auth-refresh",
        reason: "Authentication token expired - re-login required",
      });
      // Not a candidate any more: the snapshot the balancer sees is reauth_required, and using it
      // again is refused without another call to the auth server.
      const snap = await w.gw.running.gateway.services.accounts.get(id);
      expect(snap!.status).toBe("reauth_required");
      const calls = w.auth.state.refreshCalls;
      await expect(creds.get(id)).rejects.toThrow("reauth_required");
      await expect(creds.get(id, { forceRefresh: true })).rejects.toThrow("reauth_required");
      expect(w.auth.state.refreshCalls).toBe(calls);
      // Reactivation is refused; only a new login/import of the same identity brings it back.
      expect((await fetch(`${w.gw.url}/api/accounts/${id}/reactivate`, { method: "POST" })).status).toBe(409);
      const again = await w.importTokens(w.auth.issue(who));
      expect(again).toBe(id);
      expect((await w.account(id)).status).toBe("active");
      expect((await creds.get(id)).accessToken).toBeString();
    } finally {
      w.auth.state.onRefresh = null;
    }
  });
});

describe("logs", () => {
  test("no token value issued by the fake appears in the gateway log", async () => {
    const log = w.gw.logText();
    expect(log.length).toBeGreaterThan(0);
    expect(log).toContain("token refresh failed");
    for (const t of w.auth.state.issued) expect(log).not.toContain(t);
  });
});

describe("background refresh pass", () => {
  test("idle accounts near expiry are refreshed without a request; fresh ones are left alone", async () => {
    const clock = new FakeClock(Date.now());
    /** Moves the gateway's clock in 10 ms steps, giving the refresh a moment of real time to finish. */
    const pass = async (ms: number) => {
      for (let t = 0; t < ms; t += 10) {
        await clock.advance(10);
        await Bun.sleep(1);
      }
    };
    const b = await startAccountsWorld({ env: { CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "0.2" }, clock });
    try {
      const stale = b.auth.issue(identity("idle"), { expiresInSeconds: 120 });
      const fresh = b.auth.issue(identity("idle"));
      const idStale = await b.importTokens(stale);
      const idFresh = await b.importTokens(fresh);
      const refreshedStale = () =>
        b.gw
          .logs()
          .some((l) => l.msg === "tokens refreshed" && l.trigger === "background" && l.accountId === idStale);
      const end = clock.now() + 3_000;
      while (clock.now() < end && !refreshedStale()) await pass(20);
      expect(refreshedStale()).toBe(true);
      expect(b.auth.state.refreshCalls).toBe(1);
      expect((await b.account(idStale)).accessTokenExpiresAt!).toBeGreaterThan(Date.now() + 30 * 60_000);
      await pass(300);
      expect(b.auth.state.refreshCalls).toBe(1);
      expect(b.gw.logs().some((l) => l.msg === "tokens refreshed" && l.accountId === idFresh)).toBe(false);
    } finally {
      await b.stop();
    }
  });
});
