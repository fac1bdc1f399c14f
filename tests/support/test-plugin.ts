/**
 * TEST-ONLY plugin standing in for two providers that other branches implement for real:
 * `credentials` (plugins/auth-refresh) and `leases` (plugins/balancing), plus a trivial
 * `account.select` answer (the first candidate). Tokens are `tok-<accountId>`; a
 * forced refresh bumps a generation (`tok-<accountId>-r<n>`) so tests can see it happened.
 * Never registered outside tests.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { definePlugin, type Plugin } from "../../src/plugin-host/api.ts";
import type { Database } from "../../src/store/schema.ts";

export interface TestProviders {
  readonly plugin: Plugin;
  /** Leases currently held, per account. */
  readonly held: Map<string, number>;
  /** Forced refreshes, per account. */
  readonly refreshes: Map<string, number>;
  /** Accounts whose credentials cannot be had (get() throws). */
  readonly broken: Set<string>;
  /** Set once the gateway is up (the plugin reads installation ids from the store). */
  bind(db: Kysely<Database>): void;
}

export function testCredentialsPlugin(): TestProviders {
  const held = new Map<string, number>();
  const refreshes = new Map<string, number>();
  const broken = new Set<string>();
  let db: Kysely<Database> | null = null;
  const plugin = definePlugin({
    name: "test.providers",
    setup(ctx) {
      ctx.provide("credentials", {
        async get(accountId, options) {
          if (broken.has(accountId)) throw new Error(`test: no credentials for ${accountId}`);
          if (!db) throw new Error("test plugin not bound to a store");
          const row = await db
            .selectFrom("accounts")
            .select(["chatgpt_account_id", "codex_installation_id"])
            .where("id", "=", accountId)
            .executeTakeFirstOrThrow();
          if (options?.forceRefresh) refreshes.set(accountId, (refreshes.get(accountId) ?? 0) + 1);
          const gen = refreshes.get(accountId) ?? 0;
          return {
            accessToken: gen > 0 ? `tok-${accountId}-r${gen}` : `tok-${accountId}`,
            chatgptAccountId: row.chatgpt_account_id,
            installationId: row.codex_installation_id,
          };
        },
      });
      ctx.provide("leases", {
        async acquire(accountId) {
          held.set(accountId, (held.get(accountId) ?? 0) + 1);
          let released = false;
          return {
            accountId,
            release() {
              if (released) throw new Error(`lease on ${accountId} released twice`);
              released = true;
              held.set(accountId, (held.get(accountId) ?? 1) - 1);
            },
          };
        },
        inFlight: (accountId) => held.get(accountId) ?? 0,
      });
      ctx.on("account.select", (e) => {
        const pick = e.candidates[0];
        return pick ? { type: "route.account", accountId: pick.id } : undefined;
      });
    },
  });
  return {
    plugin,
    held,
    refreshes,
    broken,
    bind: (d) => {
      db = d;
    },
  };
}
