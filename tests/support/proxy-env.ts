/**
 * A whole proxy test bench with the real built-in plugins: one fake upstream on its own socket
 * serving the Codex backend (`/codex/*`), `/wham/usage` and the OAuth token endpoint, and a gateway
 * pointed at it. Seeded accounts get real (fake-issued, encrypted) tokens, so the auth-refresh
 * plugin's credentials provider and the balancing plugin's leases serve the proxy as in production.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Clock } from "../../src/core/clock.ts";
import type { Plugin } from "../../src/plugin-host/api.ts";
import type { Database } from "../../src/store/schema.ts";
import { type FakeAuth, fakeAuth, type TokenBundle } from "../fakes/auth.ts";
import { type FakeCodex, fakeCodex } from "../fakes/codex.ts";
import { type FakeServer, type FakeWebSocket, startFakeServer } from "../fakes/server.ts";
import { type FakeUsageState, fakeUsage } from "../fakes/usage.ts";
import { type SeedAccount, seedAccount } from "./accounts.ts";
import { startGateway, type TestGateway } from "./gateway.ts";

export interface ProxySeed extends SeedAccount {
  /** Leave the account without tokens (its credentials cannot be had). */
  readonly withoutTokens?: boolean;
}

export interface ProxyEnv {
  readonly gw: TestGateway;
  readonly fake: FakeCodex;
  readonly auth: FakeAuth;
  /** The fake `/wham/usage` the usage poller reads (script `respond` to keep seeded usage stable). */
  readonly usage: FakeUsageState;
  readonly upstream: FakeServer;
  readonly db: Kysely<Database>;
  /** The tokens each seeded account holds now (updated by `tokensOf`). */
  readonly tokens: Map<string, TokenBundle>;
  /** Streams in flight on an account, as the balancing plugin's leases count them. */
  inFlight(accountId: string): number;
  seed(account: ProxySeed): Promise<void>;
  stop(): Promise<void>;
}

export async function startProxyEnv(
  opts: {
    accounts?: readonly ProxySeed[];
    env?: Record<string, string>;
    fake?: FakeCodex;
    /** Extra plugins, registered after the built-in ones. */
    plugins?: readonly Plugin[];
    /** The gateway's clock and timers (a FakeClock: the test moves time instead of sleeping). */
    clock?: Clock;
    /** Put this server in front of the upstream (given the regular fakes' URL, returns its own). */
    front?: (fakesUrl: string) => string;
  } = {},
): Promise<ProxyEnv> {
  const fake = opts.fake ?? fakeCodex();
  const auth = fakeAuth();
  const usage = fakeUsage();
  const upstream = startFakeServer(
    { ...auth.routes, ...usage.routes, ...fake.routes },
    fake.websocket as FakeWebSocket,
  );
  const gw = await startGateway({
    env: {
      CODEX_LB_UPSTREAM_BASE_URL: `${opts.front ? opts.front(upstream.url) : upstream.url}/backend-api`,
      CODEX_LB_AUTH_BASE_URL: upstream.url,
      CODEX_LB_OAUTH_CALLBACK_PORT: "0",
      CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
      CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "3600",
      CODEX_LB_REQUEST_LOG_FLUSH_MS: "20",
      CODEX_LB_LOG_LEVEL: "info",
      // Tests pick accounts by seed order unless they say otherwise.
      CODEX_LB_ROUTING_STRATEGY: "fill_first",
      ...opts.env,
    },
    plugins: opts.plugins ?? [],
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const db = gw.running.store.db;
  const tokens = new Map<string, TokenBundle>();
  const gateway = gw.running.gateway;
  const seed = async (a: ProxySeed) => {
    await seedAccount(db, a);
    if (a.withoutTokens) return;
    const bundle = auth.issue({
      email: a.email ?? `${a.id}@example.test`,
      chatgptAccountId: a.chatgptAccountId ?? `chatgpt-${a.id}`,
      chatgptUserId: `user-${a.id}`,
      planType: a.planType ?? "plus",
    });
    const saved = await gateway.accounts.saveTokens(a.id, bundle);
    if (saved !== "saved") throw new Error(`seeding tokens for ${a.id}: ${saved}`);
    tokens.set(a.id, bundle);
  };
  for (const a of opts.accounts ?? []) await seed(a);
  return {
    gw,
    fake,
    auth,
    usage: usage.state,
    upstream,
    db,
    tokens,
    inFlight: (id) => gateway.services.provider("leases").inFlight(id),
    seed,
    stop: async () => {
      await gw.stop();
      await upstream.stop();
    },
  };
}

/** Polls `fn` until it returns a truthy value (at most `ms`). */
export async function eventually<T>(fn: () => Promise<T> | T, ms = 2000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > until) return v;
    await Bun.sleep(10);
  }
}
