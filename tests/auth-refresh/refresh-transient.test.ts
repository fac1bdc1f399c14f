/**
 * A transient refresh failure must not block a still-valid access token, and a refresh timeout must
 * never lose a rotated refresh token (both were holes on the old main: every request failed 502
 * with the auth server down; a late answer was dropped and the next refresh got
 * `refresh_token_reused` → reauth_required).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { GatewayError } from "../../src/core/errors.ts";
import type { CredentialsProvider } from "../../src/plugin-host/api.ts";
import { type AccountsWorld, identity, startAccountsWorld } from "../support/accounts.ts";
import { eventually } from "../support/proxy-env.ts";

let w: AccountsWorld;
let creds: CredentialsProvider;
let clock: FakeClock;
beforeAll(async () => {
  clock = new FakeClock(Date.now());
  w = await startAccountsWorld({
    clock,
    env: { CODEX_LB_REFRESH_TIMEOUT_SECONDS: "0.3", CODEX_LB_REFRESH_FAILURE_REUSE_SECONDS: "1" },
  });
  creds = w.gw.running.gateway.services.provider("credentials");
});
afterAll(async () => {
  await w.stop();
});

/** An account whose token is due for refresh (within the 300 s margin) but valid for 120 s more. */
async function validButDue(label: string) {
  const bundle = w.auth.issue(identity(label), { expiresInSeconds: 120, now: clock.now() });
  return { id: await w.importTokens(bundle), bundle };
}

describe("auth server down, access token still valid", () => {
  test("requests are served with the valid token; the account stays in rotation; the refresh is retried with backoff", async () => {
    const { id, bundle } = await validButDue("down");
    w.auth.state.onRefresh = () => new Response("auth server unavailable", { status: 503 });
    try {
      const calls0 = w.auth.state.refreshCalls;
      const got = await creds.get(id);
      expect(got.accessToken).toBe(bundle.accessToken);
      expect(w.auth.state.refreshCalls).toBe(calls0 + 1);
      const snap = await w.gw.running.gateway.services.accounts.get(id);
      expect(snap).toMatchObject({ status: "active", cooldownUntil: null, failureStreak: 0 });
      // Again within the reuse window: served, no new call.
      expect((await creds.get(id)).accessToken).toBe(bundle.accessToken);
      expect(w.auth.state.refreshCalls).toBe(calls0 + 1);
      // The background retry fires after its backoff (5 s on the gateway's clock), still failing
      // (the periodic background pass may try too); the account is still served and not cooled down…
      await clock.advance(5_100);
      await Bun.sleep(50);
      const calls1 = w.auth.state.refreshCalls;
      expect(calls1).toBeGreaterThanOrEqual(calls0 + 2);
      expect((await creds.get(id)).accessToken).toBe(bundle.accessToken);
      expect((await w.gw.running.gateway.services.accounts.get(id))!.cooldownUntil).toBeNull();
      // …then the auth server is back: the next retry (10 s later) stores new tokens.
      w.auth.state.onRefresh = null;
      await clock.advance(10_100);
      await Bun.sleep(50);
      expect(w.auth.state.refreshCalls).toBeGreaterThan(calls1);
      const after = await w.gw.running.gateway.services.accounts.credentials(id);
      expect(after!.accessToken).not.toBe(bundle.accessToken);
      expect(after!.refreshToken).not.toBe(bundle.refreshToken);
    } finally {
      w.auth.state.onRefresh = null;
    }
  });

  test("with an expired token the failure is the request's: refresh_failed and a backoff", async () => {
    const bundle = w.auth.issue(identity("expired"), { expiresInSeconds: 10, now: clock.now() });
    const id = await w.importTokens(bundle);
    w.auth.state.onRefresh = () => new Response("auth server unavailable", { status: 503 });
    try {
      await clock.advance(1);
      const err = await creds.get(id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe("refresh_failed");
      const snap = await w.gw.running.gateway.services.accounts.get(id);
      expect(snap!.cooldownUntil).not.toBeNull();
    } finally {
      w.auth.state.onRefresh = null;
    }
  });
});

describe("the auth server rotates the token but answers after the refresh timeout", () => {
  test("the waiting request is released after the timeout, the late answer is stored, the next refresh works", async () => {
    const bundle = w.auth.issue(identity("late"), { expiresInSeconds: 10, now: clock.now() });
    const id = await w.importTokens(bundle);
    let answer!: () => void;
    // The auth server rotates at once (the old refresh token is spent) and answers when told.
    w.auth.state.holdAnswer = new Promise<void>((r) => {
      answer = r;
    });
    try {
      const calls0 = w.auth.state.refreshCalls;
      let outcome: unknown = null;
      const waiting = creds.get(id).then(
        (c) => (outcome = c),
        (e: unknown) => (outcome = e),
      );
      expect(await eventually(() => w.auth.state.refreshCalls === calls0 + 1)).toBe(true);
      expect(w.auth.state.refreshTokens.has(bundle.refreshToken)).toBe(false);
      // The refresh timeout (0.3 s) passes on the gateway's clock: the request is released…
      await clock.advance(300);
      await waiting;
      expect((outcome as GatewayError).code).toBe("refresh_failed");
      // …but the call was not dropped: its late answer (the rotated tokens) is stored.
      answer();
      expect(
        await eventually(async () => {
          const stored = await w.gw.running.gateway.services.accounts.credentials(id, { fresh: true });
          return stored!.refreshToken !== bundle.refreshToken;
        }),
      ).toBe(true);
      const stored = await w.gw.running.gateway.services.accounts.credentials(id, { fresh: true });
      expect(w.auth.state.refreshTokens.has(stored!.refreshToken)).toBe(true);
      expect((await w.account(id)).status).toBe("active");
      // A later refresh uses the new refresh token: no refresh_token_reused, no reauth_required.
      w.auth.state.holdAnswer = null;
      const again = await creds.get(id, { forceRefresh: true });
      expect(again.accessToken).not.toBe(bundle.accessToken);
      expect(again.accessToken).not.toBe(stored!.accessToken);
      expect((await w.account(id)).status).toBe("active");
    } finally {
      w.auth.state.holdAnswer = null;
      answer();
    }
  });
});
