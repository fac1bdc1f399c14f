/**
 * Decisions are pure: every change a plugin wants is an action the core validates and applies with
 * compare-and-set (sticky bind/touch/forget, token save, usage record), decrypted tokens reach only
 * the credentials provider, and failover is an explicit `request.failover` decision.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GatewayServices, Plugin } from "../../src/plugin-api.ts";
import { type AccountsWorld, identity, seedAccount, startAccountsWorld } from "../support/accounts.ts";
import { eventually } from "../support/proxy-env.ts";

let w: AccountsWorld;
/** The services a third-party plugin (not the credentials provider) gets. */
let outsider: GatewayServices;
const spy: Plugin = {
  name: "tests.outsider",
  setup(ctx) {
    outsider = ctx.services;
  },
};

beforeAll(async () => {
  w = await startAccountsWorld({ plugins: [spy] });
});
afterAll(async () => {
  await w.stop();
});

describe("tokens", () => {
  test("a plugin that is not the credentials provider gets no decrypted tokens", async () => {
    const id = await w.importTokens(w.auth.issue(identity("tok")));
    await expect(outsider.accounts.credentials(id)).rejects.toThrow(
      "may not read decrypted tokens (the credentials provider is codex-lb.auth-refresh)",
    );
    // The core itself (and the provider) still can.
    expect((await w.gw.running.gateway.services.accounts.credentials(id))?.accountId).toBe(id);
  });

  test("tokens.save from a plugin that is not the provider is refused and writes nothing", async () => {
    const bundle = w.auth.issue(identity("tok2"));
    const id = await w.importTokens(bundle);
    const [r] = await outsider.apply(
      [{ type: "tokens.save", accountId: id, accessToken: "x", refreshToken: "y", idToken: "z" }],
      { source: "test" },
    );
    expect(r?.status).toBe("refused");
    expect(JSON.stringify(r)).not.toContain('"y"');
    const stored = await w.gw.running.gateway.services.accounts.credentials(id);
    expect(stored?.refreshToken).toBe(bundle.refreshToken);
    expect(w.gw.logs().some((l) => l.msg === "data action refused" && l.plugin === "tests.outsider")).toBe(
      true,
    );
  });

  test("the provider's refresh saves tokens through the action; a save not attributed to the provider is refused", async () => {
    const { id, bundle } = await w.expiringAccount("tok3");
    const creds = await w.gw.running.gateway.services.provider("credentials").get(id);
    expect(creds.accessToken).not.toBe(bundle.accessToken);
    const stored = await w.gw.running.gateway.services.accounts.credentials(id);
    expect(stored?.refreshToken).not.toBe(bundle.refreshToken);
    // Not even an unattributed save (the admin surface's apply) may write tokens.
    const [r] = await w.gw.running.gateway.services.apply(
      [
        {
          type: "tokens.save",
          accountId: id,
          accessToken: "a",
          refreshToken: "b",
          idToken: bundle.idToken,
          replacing: bundle.refreshToken,
        },
      ],
      { source: "test" },
    );
    expect(r?.status).toBe("refused");
  });
});

test("a refresh that finishes after a new login does not overwrite it (tokens.save is stale)", async () => {
  const who = identity("race");
  const old = w.auth.issue(who, { expiresInSeconds: 60 });
  const id = await w.importTokens(old);
  // The auth server answers the refresh only when told: the new login lands while it is in flight.
  let answer!: () => void;
  w.auth.state.holdAnswer = new Promise<void>((r) => {
    answer = r;
  });
  try {
    const calls0 = w.auth.state.refreshCalls;
    const pending = w.gw.running.gateway.services.provider("credentials").get(id);
    expect(await eventually(() => w.auth.state.refreshCalls === calls0 + 1)).toBe(true);
    const relogin = w.auth.issue(who);
    expect(await w.importTokens(relogin)).toBe(id);
    answer();
    const served = await pending;
    expect(served.accessToken).toBe(relogin.accessToken);
    const stored = await w.gw.running.gateway.services.accounts.credentials(id);
    expect(stored?.refreshToken).toBe(relogin.refreshToken);
    expect(
      w.gw.logs().some((l) => l.msg === "tokens refreshed" && l.accountId === id && l.saved === "stale"),
    ).toBe(true);
  } finally {
    w.auth.state.holdAnswer = null;
    answer();
  }
});

describe("sticky bindings", () => {
  test("bind, touch and forget are actions with compare-and-set guards", async () => {
    const db = w.gw.running.store.db;
    await seedAccount(db, { id: "st-a" });
    await seedAccount(db, { id: "st-b" });
    const apply = (a: Parameters<GatewayServices["apply"]>[0]) => outsider.apply(a, { source: "test" });
    const status = async (a: Parameters<GatewayServices["apply"]>[0]) =>
      (await apply(a)).map((r) => r.status);

    expect(
      await status([
        { type: "sticky.bind", key: "k1", kind: "session", accountId: "st-a", expectedAccountId: null },
      ]),
    ).toEqual(["applied"]);
    // A decision made when the key was unbound does not move it once someone bound it.
    expect(
      await status([
        { type: "sticky.bind", key: "k1", kind: "session", accountId: "st-b", expectedAccountId: null },
      ]),
    ).toEqual(["stale"]);
    expect((await outsider.sticky.lookup("k1"))?.accountId).toBe("st-a");
    expect(
      await status([
        { type: "sticky.bind", key: "k1", kind: "session", accountId: "st-b", expectedAccountId: "st-a" },
      ]),
    ).toEqual(["applied"]);
    expect((await outsider.sticky.lookup("k1"))?.accountId).toBe("st-b");
    // Touch only slides a binding still held by that account.
    expect(await status([{ type: "sticky.touch", key: "k1", accountId: "st-a" }])).toEqual(["noop"]);
    expect(await status([{ type: "sticky.forget", key: "k1", expectedAccountId: "st-a" }])).toEqual(["noop"]);
    expect((await outsider.sticky.lookup("k1"))?.accountId).toBe("st-b");
    expect(await status([{ type: "sticky.forget", key: "k1" }])).toEqual(["applied"]);
    expect(await outsider.sticky.lookup("k1")).toBeNull();
    // Invalid data is refused before anything is written.
    expect(
      await status([{ type: "sticky.bind", key: "", kind: "session", accountId: "st-a" } as never]),
    ).toEqual(["invalid"]);
  });

  test("plugins see bindings read-only", () => {
    // `cached` (session 12) is a reader too: the cached binding, or null when the store must be read.
    expect(Object.keys(outsider.sticky).sort()).toEqual(["cached", "lookup", "responseOwner"]);
    for (const write of ["bind", "touch", "touchSkips", "forget", "forgetCached", "sweep"])
      expect(write in outsider.sticky).toBe(false);
  });
});

describe("usage readings", () => {
  test("usage.record stores snapshots through the core; an unknown account is missing", async () => {
    await seedAccount(w.gw.running.store.db, { id: "us-a" });
    const window = { usedPercent: 55, windowMinutes: 300, resetAt: 1_900_000_000_000 };
    const results = await outsider.apply(
      [
        { type: "usage.record", accountId: "us-a", primary: window, secondary: null, credits: null },
        { type: "usage.record", accountId: "nobody", primary: window, secondary: null, credits: null },
      ],
      { source: "test" },
    );
    expect(results.map((r) => r.status)).toEqual(["applied", "missing"]);
    expect((await outsider.accounts.get("us-a"))?.primary).toEqual(window);
  });
});

describe("failover is a decision", () => {
  const failure = (over: Record<string, unknown>) => ({
    requestId: "r-fo",
    phase: "http" as const,
    httpStatus: 500,
    errorCode: null,
    errorType: null,
    message: null,
    transport: false,
    resetsAt: null,
    resetsInSeconds: null,
    now: Date.now(),
    ...over,
  });

  test("the failover plugin returns request.failover next to the account action; a client error gets neither", async () => {
    await seedAccount(w.gw.running.store.db, { id: "fo-a" });
    const account = (await outsider.accounts.get("fo-a"))!;
    const server = await outsider.fire("upstream.failed", failure({ account }) as never);
    expect(server.actions.map((a) => a.type)).toEqual(["account.cooldown", "request.failover"]);
    const client = await outsider.fire(
      "upstream.failed",
      failure({
        account: (await outsider.accounts.get("fo-a"))!,
        httpStatus: 400,
        errorCode: "invalid_value",
      }) as never,
    );
    expect(client.actions).toEqual([]);
  });
});
