/**
 * Helpers for tests that need accounts: a gateway wired to a fake auth server and a fake
 * `/wham/usage`, importing a token bundle as a Codex CLI auth.json, and seeding account rows.
 *
 * @module
 */

import type { Kysely } from "kysely";
import type { AccountView } from "../../src/accounts/views.ts";
import type { Clock } from "../../src/core/clock.ts";
import type { AccountStatus } from "../../src/core/types.ts";
import type { Plugin } from "../../src/plugin-host/api.ts";
import type { Database } from "../../src/store/schema.ts";
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
  /** Imports an identity whose access token expires within the refresh margin (next use refreshes it). */
  expiringAccount(label: string): Promise<{ id: string; bundle: TokenBundle }>;
  /** The account's `account_events` rows through the admin API, newest first. */
  events(
    id: string,
  ): Promise<{ action: string; toStatus: string; reason: string; source: string; plugin: string }[]>;
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
  opts: {
    env?: Record<string, string>;
    plugins?: readonly Plugin[];
    /** The gateway's clock (and the fake usage and auth servers'): a FakeClock lets the test move time. */
    clock?: Clock;
  } = {},
): Promise<AccountsWorld> {
  const auth = fakeAuth(opts.clock ? { now: () => opts.clock!.now() } : {});
  const usage = fakeUsage(opts.clock ? { now: () => opts.clock!.now() } : {});
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
    clock: opts.clock,
  });
  const importTokens = async (bundle: TokenBundle, lastRefresh?: string): Promise<string> => {
    const res = await fetch(`${gw.url}/api/accounts/import`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(authJsonOf(bundle, lastRefresh)),
    });
    if (res.status !== 200) throw new Error(`import failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { accountId: string }).accountId;
  };
  return {
    gw,
    auth,
    usage: usage.state,
    server,
    importTokens,
    async account(id) {
      const res = await fetch(`${gw.url}/api/accounts/${encodeURIComponent(id)}`);
      if (res.status !== 200) throw new Error(`GET account failed: ${res.status}`);
      return (await res.json()) as AccountView;
    },
    async expiringAccount(label) {
      const bundle = auth.issue(identity(label), { expiresInSeconds: 60 });
      return { id: await importTokens(bundle), bundle };
    },
    async events(id) {
      const res = await fetch(`${gw.url}/api/accounts/${encodeURIComponent(id)}/events`);
      return ((await res.json()) as { items: Awaited<ReturnType<AccountsWorld["events"]>> }).items;
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

export interface SeedAccount {
  readonly id: string;
  /** Sent upstream as `chatgpt-account-id`; defaults to `chatgpt-<id>`. */
  readonly chatgptAccountId?: string;
  readonly email?: string;
  readonly status?: AccountStatus;
  /** The plan (`plus` when omitted). */
  readonly planType?: string;
  readonly resetAt?: number | null;
  readonly cooldownUntil?: number | null;
  /** Orders `listSnapshots` (oldest first). */
  readonly createdAt?: number;
}

let seq = 0;

export async function seedAccount(db: Kysely<Database>, a: SeedAccount): Promise<void> {
  const now = Date.now();
  await db
    .insertInto("accounts")
    .values({
      id: a.id,
      chatgpt_account_id: a.chatgptAccountId ?? `chatgpt-${a.id}`,
      chatgpt_user_id: null,
      email: a.email ?? `${a.id}@example.test`,
      alias: null,
      plan_type: a.planType ?? "plus",
      codex_installation_id: crypto.randomUUID(),
      access_token_enc: null,
      refresh_token_enc: null,
      id_token_enc: null,
      access_token_expires_at: null,
      last_refresh_at: null,
      status: a.status ?? "active",
      status_reason: null,
      reset_at: a.resetAt ?? null,
      blocked_at: null,
      cooldown_until: a.cooldownUntil ?? null,
      created_at: a.createdAt ?? now + seq++,
      updated_at: now,
    })
    .execute();
}
