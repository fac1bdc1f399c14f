/**
 * Cached sticky bindings across two gateways on one PostgreSQL database (in process, each with its
 * own caches and change feed): a keyed request whose binding is cached is selected at once (no
 * store read, no promise), and a binding moved or removed through one replica, or a TTL changed
 * there, is honoured by the other within a second although the other had it cached; other account
 * changes (a pause, a login) leave both replicas' cached bindings alone.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AccountSnapshot, Action } from "../../src/plugin-host/api.ts";
import { candidatesOf, insertAccount } from "../balancing/fixtures.ts";
import { fakeAuth } from "../fakes/auth.ts";
import { authJsonOf } from "../support/accounts.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { createTestDatabase } from "../support/postgres.ts";

let a: TestGateway;
let b: TestGateway;
beforeAll(async () => {
  const url = await createTestDatabase("sticky_replicas");
  const env = { CODEX_LB_DATABASE_URL: url };
  a = await startGateway({ env }); // migrates
  b = await startGateway({ env });
  for (const id of ["acc-x", "acc-y"]) await insertAccount(a.running.store.db, id);
  // Rows written behind the gateways' backs: both read them at their next snapshot refresh.
  for (const gw of [a, b]) {
    for (let i = 0; i < 100 && (await gw.running.gateway.services.accounts.list()).length < 2; i++)
      await Bun.sleep(50);
  }
}, 60_000);
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

let seq = 0;
/** Fires `account.select` through the gateway's dispatcher, as the proxy does; the outcome as it comes. */
function fireSelect(gw: TestGateway, all: readonly AccountSnapshot[], headers: Record<string, string>) {
  const now = Date.now();
  return gw.running.gateway.dispatcher.fire("account.select", {
    requestId: `sticky-replicas-${++seq}`,
    model: "gpt-5.4",
    candidates: candidatesOf(all, now),
    all,
    excluded: [],
    headers: new Headers(headers),
    body: { promptCacheKey: null, previousResponseId: null },
    now,
    random: Math.random,
  });
}

async function routed(gw: TestGateway, headers: Record<string, string>): Promise<string> {
  const all = await gw.running.gateway.services.accounts.list();
  const outcome = await fireSelect(gw, all, headers);
  const route = outcome.actions.find((x: Action) => x.type === "route.account");
  if (route?.type !== "route.account") throw new Error(`no route: ${JSON.stringify(outcome.actions)}`);
  return route.accountId;
}

const cachedOn = (gw: TestGateway, key: string) => gw.running.gateway.services.sticky.cached?.(key) ?? null;

/**
 * Returns once B has received every change A published before the call: A removes a binding B
 * has cached, and A's feed sends one statement at a time, in order (src/cluster/feed.ts).
 */
async function caughtUp(): Promise<void> {
  const sentinel = `sentinel-${crypto.randomUUID()}`;
  await routed(b, { "session-id": sentinel });
  await routed(b, { "session-id": sentinel });
  expect(cachedOn(b, sentinel)).not.toBeNull();
  const res = await fetch(`${a.url}/api/sticky-sessions/${encodeURIComponent(sentinel)}`, {
    method: "DELETE",
  });
  expect(res.status).toBe(200);
  await within1s(() => cachedOn(b, sentinel) === null);
}

/** Waits for `ok`, checking every 10 ms, 100 times at most (about 1 s). */
async function within1s(ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return;
    await Bun.sleep(10);
  }
  throw new Error("not within 100 checks 10 ms apart");
}

describe("cached sticky bindings over two replicas on one PostgreSQL", () => {
  test("a key whose binding is cached is selected at once: route and touch, no promise", async () => {
    const headers = { "session-id": `at-once-${crypto.randomUUID()}` };
    const first = await routed(b, headers); // binds
    expect(await routed(b, headers)).toBe(first); // reads the binding (fills the cache)
    const all = await b.running.gateway.services.accounts.list();
    const outcome = fireSelect(b, all, headers);
    expect(outcome).not.toBeInstanceOf(Promise);
    const { actions, applied } = await outcome;
    expect(actions).toEqual([
      expect.objectContaining({ type: "route.account", accountId: first, reason: "sticky session" }),
      { type: "sticky.touch", key: headers["session-id"], accountId: first },
    ]);
    // What the store would have answered: nothing written, the binding refreshed less than 15 s ago.
    expect(applied.map((r) => r.status)).toEqual(["noop"]);
  });

  test("a binding moved through replica A is honoured by replica B within 1 s, though B had it cached", async () => {
    const key = `moved-${crypto.randomUUID()}`;
    const headers = { "session-id": key };
    const x = await routed(b, headers);
    await routed(b, headers);
    expect(cachedOn(b, key)?.accountId).toBe(x);
    const y = x === "acc-x" ? "acc-y" : "acc-x";
    const results = await a.running.gateway.services.apply(
      [{ type: "sticky.bind", key, kind: "session", accountId: y, expectedAccountId: x }],
      { source: "test" },
    );
    expect(results.map((r) => r.status)).toEqual(["applied"]);
    // Both accounts stay usable: only the feed's drop keeps B from answering x from its cache.
    await within1s(async () => (await routed(b, headers)) === y);
    for (let i = 0; i < 5; i++) expect(await routed(b, headers)).toBe(y);
  });

  test("a binding removed through replica A (DELETE /api/sticky-sessions) is not answered by B's cache", async () => {
    const key = `deleted-${crypto.randomUUID()}`;
    const headers = { "session-id": key };
    await routed(b, headers);
    await routed(b, headers);
    expect(cachedOn(b, key)).not.toBeNull();
    const res = await fetch(`${a.url}/api/sticky-sessions/${encodeURIComponent(key)}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    await within1s(() => cachedOn(b, key) === null);
    expect(await b.running.gateway.services.sticky.lookup(key)).toBeNull();
  });

  test("an account deleted through replica A takes its bindings out of both replicas' caches", async () => {
    await insertAccount(a.running.store.db, "acc-gone");
    const key = `gone-${crypto.randomUUID()}`;
    const results = await a.running.gateway.services.apply(
      [{ type: "sticky.bind", key, kind: "session", accountId: "acc-gone" }],
      { source: "test" },
    );
    expect(results.map((r) => r.status)).toEqual(["applied"]);
    for (const gw of [a, b]) {
      expect((await gw.running.gateway.services.sticky.lookup(key))?.accountId).toBe("acc-gone");
      expect(cachedOn(gw, key)?.accountId).toBe("acc-gone");
    }
    const res = await fetch(`${a.url}/api/accounts/acc-gone`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(cachedOn(a, key)).toBeNull();
    await within1s(() => cachedOn(b, key) === null);
    expect(await b.running.gateway.services.sticky.lookup(key)).toBeNull();
  });

  test("an account paused and a login through replica A leave both replicas' cached bindings", async () => {
    await insertAccount(a.running.store.db, "acc-other");
    const key = `kept-${crypto.randomUUID()}`;
    const headers = { "session-id": key };
    await routed(a, headers);
    await routed(a, headers);
    const bound = cachedOn(a, key)?.accountId;
    expect(bound).toBeDefined();
    // The bind's own message (B drops the key) must have reached B before B caches it.
    await caughtUp();
    await routed(b, headers);
    await routed(b, headers);
    expect(cachedOn(b, key)?.accountId).toBe(bound);
    const paused = await a.running.gateway.services.apply(
      [{ type: "account.pause", accountId: "acc-other" }],
      {
        source: "test",
      },
    );
    expect(paused.map((r) => r.status)).toEqual(["applied"]);
    // A login (tokens and identity written) through the admin API.
    const login = await fetch(`${a.url}/api/accounts/import`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(
        authJsonOf(
          fakeAuth().issue({
            email: "login@example.test",
            chatgptAccountId: "chatgpt-login",
            chatgptUserId: "user-login",
          }),
        ),
      ),
    });
    expect(login.status).toBe(200);
    // Both changes were published on the feed's accounts topic before the sentinel's removal.
    await caughtUp();
    await within1s(async () => {
      const other = (await b.running.gateway.services.accounts.list()).find((x) => x.id === "acc-other");
      return other?.status === "paused";
    });
    expect(cachedOn(a, key)?.accountId).toBe(bound);
    expect(cachedOn(b, key)?.accountId).toBe(bound);
  });

  test("a TTL changed through replica A drops B's cached bindings", async () => {
    const key = `ttl-${crypto.randomUUID()}`;
    const headers = { "session-id": key };
    await routed(b, headers);
    await routed(b, headers);
    expect(cachedOn(b, key)).not.toBeNull();
    const res = await fetch(`${a.url}/api/settings`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ stickyTtlSeconds: 900 }),
    });
    expect(res.status).toBe(200);
    // B's settings are read again (its cached document is dropped by the same feed): the binding,
    // well within the new TTL, is no longer answered from the cache; the store is read afresh.
    await within1s(async () => {
      await b.running.gateway.services.runtimeSettings.get();
      return cachedOn(b, key) === null;
    });
    expect((await b.running.gateway.services.runtimeSettings.get()).stickyTtlSeconds).toBe(900);
    expect(await b.running.gateway.services.sticky.lookup(key)).not.toBeNull();
    expect(cachedOn(b, key)).not.toBeNull();
  });
});
