/**
 * A whole proxy test bench: the fake Codex backend on its own socket, a gateway pointed at it with
 * the TEST-ONLY providers plugin, and accounts seeded directly in the store.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Plugin } from "../../src/plugin-host/api.ts";
import type { Database } from "../../src/store/schema.ts";
import { type FakeCodex, fakeCodex } from "../fakes/codex.ts";
import { type FakeServer, startFakeServer } from "../fakes/server.ts";
import { type SeedAccount, seedAccount } from "./accounts.ts";
import { startGateway, type TestGateway } from "./gateway.ts";
import { type TestProviders, testCredentialsPlugin } from "./test-plugin.ts";

export interface ProxyEnv {
  readonly gw: TestGateway;
  readonly fake: FakeCodex;
  readonly upstream: FakeServer;
  readonly providers: TestProviders;
  readonly db: Kysely<Database>;
  stop(): Promise<void>;
}

export async function startProxyEnv(
  opts: {
    accounts?: readonly SeedAccount[];
    env?: Record<string, string>;
    fake?: FakeCodex;
    /** Extra plugins, registered after the test providers. */
    plugins?: readonly Plugin[];
  } = {},
): Promise<ProxyEnv> {
  const fake = opts.fake ?? fakeCodex();
  const upstream = startFakeServer(fake.routes);
  const providers = testCredentialsPlugin();
  const gw = await startGateway({
    env: {
      CODEX_LB_UPSTREAM_BASE_URL: `${upstream.url}/backend-api`,
      CODEX_LB_REQUEST_LOG_FLUSH_MS: "20",
      CODEX_LB_LOG_LEVEL: "info",
      ...opts.env,
    },
    plugins: [providers.plugin, ...(opts.plugins ?? [])],
  });
  const db = gw.running.store.db;
  providers.bind(db);
  for (const a of opts.accounts ?? []) await seedAccount(db, a);
  return {
    gw,
    fake,
    upstream,
    providers,
    db,
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
