/**
 * Helpers for tests that need accounts: a gateway wired to a fake auth server and a fake
 * `/wham/usage`, and importing a token bundle as a Codex CLI auth.json.
 *
 * @module
 */

import type { AccountView } from "../../src/accounts/views.ts";
import type { Plugin } from "../../src/plugin-host/api.ts";
import { type FakeAuth, fakeAuth, type TokenBundle } from "../fakes/auth.ts";
import { type FakeServer, startFakeServer } from "../fakes/server.ts";
import { type FakeUsageState, fakeUsage } from "../fakes/usage.ts";
import { startGateway, type TestGateway } from "./gateway.ts";

export interface AccountsWorld {
  readonly gw: TestGateway;
  readonly auth: FakeAuth;
  readonly usage: FakeUsageState;
  readonly server: FakeServer;
  /** Imports a token bundle through the admin API; returns the account id. */
  importTokens(bundle: TokenBundle, lastRefresh?: string): Promise<string>;
  account(id: string): Promise<AccountView>;
  stop(): Promise<void>;
}

/** The Codex CLI auth.json of a token bundle. */
export function authJsonOf(bundle: TokenBundle, lastRefresh = new Date().toISOString()) {
  return {
    auth_mode: "chatgpt",
    OPENAI_API_KEY: null,
    tokens: {
      id_token: bundle.idToken,
      access_token: bundle.accessToken,
      refresh_token: bundle.refreshToken,
    },
    last_refresh: lastRefresh,
  };
}

/** Starts fakes (auth + usage on one server) and a gateway pointed at them. */
export async function startAccountsWorld(
  opts: { env?: Record<string, string>; plugins?: readonly Plugin[] } = {},
): Promise<AccountsWorld> {
  const auth = fakeAuth();
  const usage = fakeUsage();
  const server = startFakeServer({ ...auth.routes, ...usage.routes });
  const gw = await startGateway({
    env: {
      CODEX_LB_AUTH_BASE_URL: server.url,
      CODEX_LB_UPSTREAM_BASE_URL: `${server.url}/backend-api`,
      CODEX_LB_OAUTH_CALLBACK_PORT: "0",
      CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
      CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "3600",
      ...opts.env,
    },
    plugins: opts.plugins ?? [],
  });
  return {
    gw,
    auth,
    usage: usage.state,
    server,
    async importTokens(bundle, lastRefresh) {
      const res = await fetch(`${gw.url}/api/accounts/import`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(authJsonOf(bundle, lastRefresh)),
      });
      if (res.status !== 200) throw new Error(`import failed: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { accountId: string }).accountId;
    },
    async account(id) {
      const res = await fetch(`${gw.url}/api/accounts/${encodeURIComponent(id)}`);
      if (res.status !== 200) throw new Error(`GET account failed: ${res.status}`);
      return (await res.json()) as AccountView;
    },
    async stop() {
      await gw.stop();
      await server.stop();
    },
  };
}

let n = 0;
/** A fresh identity for a test. */
export function identity(label = "user") {
  n++;
  return {
    email: `${label}${n}@example.com`,
    chatgptAccountId: `acct-${label}-${n}`,
    chatgptUserId: `user-${label}-${n}`,
    planType: "plus",
  };
}
