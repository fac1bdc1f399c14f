import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { FakeClock } from "../../src/core/clock.ts";
import { GatewayError } from "../../src/core/errors.ts";
import { permanentFailureCodes } from "../../src/core/failures.ts";
import type { CredentialsProvider } from "../../src/plugin-host/api.ts";
import { type AccountsWorld, identity, startAccountsWorld } from "../support/accounts.ts";

let w: AccountsWorld;
let creds: CredentialsProvider;
/** The gateway's clock: time moves only when the test says so (no same-millisecond races). */
let clock: FakeClock;
beforeAll(async () => {
  clock = new FakeClock(Date.now());
  w = await startAccountsWorld({
    clock,
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

/**
 * An account whose access token is as good as expired (10 s left, under the 30 s slack): a failed
 * refresh cannot fall back on it. (With a token that is still valid the gateway serves with it: see
 * tests/auth-refresh/refresh-transient.test.ts.)
 */
const expiringAccount = async (label: string) => {
  const bundle = w.auth.issue(identity(label), { expiresInSeconds: 10 });
  return { id: await w.importTokens(bundle), bundle };
};
const events = (id: string) => w.events(id);

const rows = [
  ...Object.entries(permanentFailureCodes).map(([code, want]) => ({
    name: code,
    answer: () => Response.json({ error: { code, message: `fake ${code}` } }, { status: 401 }),
    status: want.status as string,
    reason: want.reason as string | null,
  })),
  {
    name: "OAuth-style invalid_grant string",
    answer: () => Response.json({ error: "invalid_grant", error_description: "bad" }, { status: 400 }),
    status: "reauth_required",
    reason: "Refresh token grant invalid - re-login required",
  },
  {
    name: "transient 503",
    answer: () => new Response("upstream unavailable", { status: 503 }),
    status: "active",
    reason: null,
  },
  {
    name: "unknown code",
    answer: () => Response.json({ error: { code: "something_new" } }, { status: 400 }),
    status: "active",
    reason: null,
  },
  {
    name: "custom operator code (plugin from a file path)",
    answer: () => Response.json({ error: { code: "acme_account_banned" } }, { status: 403 }),
    status: "deactivated",
    reason: "Refresh failed with acme_account_banned (custom rule)",
  },
];

describe("refresh failure classification (table)", () => {
  for (const row of rows) {
    test(`${row.name} → ${row.status}`, async () => {
      const { id, bundle } = await expiringAccount("tbl");
      w.auth.state.onRefresh = (rt) => {
        if (rt !== bundle.refreshToken) return undefined;
        return row.answer();
      };
      const t0 = clock.now();
      // The failure happens strictly after t0 on the gateway's clock.
      await clock.advance(1);
      try {
        const err = await creds.get(id).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GatewayError);
        const view = await w.account(id);
        expect(view.status).toBe(row.status);
        if (row.reason) {
          expect((err as GatewayError).code).toBe("account_unusable");
          expect(view.statusReason).toBe(row.reason);
          expect((await events(id))[0]).toMatchObject({ action: "account.deactivate", toStatus: row.status });
        } else {
          // Transient: no status change, the account backs off and the failure is reused briefly.
          expect((err as GatewayError).code).toBe("refresh_failed");
          const snap = await w.gw.running.gateway.services.accounts.get(id);
          expect(snap!.cooldownUntil!).toBeGreaterThan(t0);
          expect(snap!.failureStreak).toBe(1);
          const calls = w.auth.state.refreshCalls;
          await expect(creds.get(id)).rejects.toThrow("Token refresh failed");
          expect(w.auth.state.refreshCalls).toBe(calls);
        }
      } finally {
        w.auth.state.onRefresh = null;
        w.auth.state.refreshDelayMs = 0;
      }
    });
  }

  test("after a transient failure the next successful refresh clears the backoff", async () => {
    const h = await startAccountsWorld({ env: { CODEX_LB_REFRESH_FAILURE_REUSE_SECONDS: "0" } });
    try {
      const c = h.gw.running.gateway.services.provider("credentials");
      const bundle = h.auth.issue(identity("heal"), { expiresInSeconds: 10 });
      const id = await h.importTokens(bundle);
      h.auth.state.onRefresh = () => new Response("busy", { status: 502 });
      await expect(c.get(id)).rejects.toThrow("Token refresh failed");
      expect((await h.gw.running.gateway.services.accounts.get(id))!.failureStreak).toBe(1);
      h.auth.state.onRefresh = null;
      await c.get(id);
      const snap = await h.gw.running.gateway.services.accounts.get(id);
      expect(snap).toMatchObject({ status: "active", failureStreak: 0, cooldownUntil: null });
    } finally {
      await h.stop();
    }
  });
});

describe("logs", () => {
  test("no token value issued by the fake appears in the gateway log", async () => {
    const log = w.gw.logText();
    expect(log).toContain("token refresh failed");
    for (const t of w.auth.state.issued) expect(log).not.toContain(t);
  });
});
