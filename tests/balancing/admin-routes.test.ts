/** The balancing admin routes over HTTP: /api/settings, PATCH /api/accounts/{id}, /api/sticky-sessions. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GatewayServices } from "../../src/plugin-host/api.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { candidatesOf, insertAccount } from "./fixtures.ts";

let gw: TestGateway;
let services: GatewayServices;
beforeAll(async () => {
  gw = await startGateway({
    env: { CODEX_LB_ROUTING_STRATEGY: "usage_weighted", CODEX_LB_STICKY_TTL_SECONDS: "600" },
  });
  services = gw.running.gateway.services;
  for (const id of ["r-1", "r-2", "r-3"]) await insertAccount(gw.running.store.db, id);
});
afterAll(async () => {
  await gw.stop();
});

const json = (method: string, body: unknown) => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

async function pick(headers: Record<string, string> = {}): Promise<string> {
  const now = Date.now();
  const all = await services.accounts.list();
  const out = await services.fire("account.select", {
    requestId: crypto.randomUUID(),
    model: null,
    candidates: candidatesOf(all, now),
    all,
    excluded: [],
    headers: new Headers(headers),
    body: {},
    now,
    random: Math.random,
  });
  const a = out.actions[0];
  if (a?.type !== "route.account") throw new Error(`no route: ${JSON.stringify(out)}`);
  return a.accountId;
}

describe("/api/settings", () => {
  test("defaults come from the environment, version 0", async () => {
    const res = await fetch(`${gw.url}/api/settings`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      routingStrategy: "usage_weighted",
      stickyTtlSeconds: 600,
      apiKeyAuthEnabled: false,
      version: 0,
    });
  });

  test("PUT changes only the given fields; a stale version is 409 settings_conflict", async () => {
    const put = await fetch(
      `${gw.url}/api/settings`,
      json("PUT", { expectedVersion: 0, stickyTtlSeconds: 120 }),
    );
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({
      routingStrategy: "usage_weighted",
      stickyTtlSeconds: 120,
      apiKeyAuthEnabled: false,
      version: 1,
    });
    const stale = await fetch(
      `${gw.url}/api/settings`,
      json("PUT", { expectedVersion: 0, routingStrategy: "fill_first" }),
    );
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("settings_conflict");
    expect(((await (await fetch(`${gw.url}/api/settings`)).json()) as { version: number }).version).toBe(1);
  });

  test("a change of strategy applies to the next selection", async () => {
    const cur = (await (await fetch(`${gw.url}/api/settings`)).json()) as { version: number };
    const put = await fetch(
      `${gw.url}/api/settings`,
      json("PUT", { expectedVersion: cur.version, routingStrategy: "round_robin" }),
    );
    expect(put.status).toBe(200);
    const seen = [await pick(), await pick(), await pick()];
    expect(new Set(seen).size).toBe(3);
    const back = await fetch(`${gw.url}/api/settings`, json("PUT", { routingStrategy: null }));
    expect(((await back.json()) as { routingStrategy: string }).routingStrategy).toBe("usage_weighted");
  });

  test("the sticky TTL setting is used for new bindings", async () => {
    await fetch(`${gw.url}/api/settings`, json("PUT", { stickyTtlSeconds: 77 }));
    const before = Date.now();
    await pick({ "session-id": "ttl-check" });
    const b = await services.sticky.lookup("ttl-check");
    expect(b!.expiresAt - b!.updatedAt).toBe(77_000);
    expect(b!.updatedAt).toBeGreaterThanOrEqual(before);
  });

  test.each([
    [{ routingStrategy: "sequential_drain" }, "routingStrategy"],
    [{ stickyTtlSeconds: 0 }, "stickyTtlSeconds"],
    [{ unknownField: 1 }, null],
    [{ expectedVersion: -1 }, "expectedVersion"],
  ])("bad body %p is a 400 in the admin envelope", async (body, field) => {
    const res = await fetch(`${gw.url}/api/settings`, json("PUT", body));
    expect(res.status).toBe(400);
    const err = ((await res.json()) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe("validation_error");
    if (field) expect(err.message).toContain(field);
  });
});

describe("PATCH /api/accounts/{id}", () => {
  test("sets the routing policy and the balancer follows it", async () => {
    const res = await fetch(`${gw.url}/api/accounts/r-3`, json("PATCH", { routingPolicy: "burn_first" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "r-3", routingPolicy: "burn_first" });
    expect((await services.accounts.get("r-3"))?.routingPolicy).toBe("burn_first");
    for (let i = 0; i < 5; i++) expect(await pick()).toBe("r-3");
    const events = await gw.running.store.db
      .selectFrom("account_events")
      .selectAll()
      .where("account_id", "=", "r-3")
      .execute();
    expect(events.map((e) => [e.action, e.source])).toEqual([["account.routing_policy", "admin"]]);
    await fetch(`${gw.url}/api/accounts/r-3`, json("PATCH", { routingPolicy: "normal" }));
  });

  test("a preserve account is used only when nothing else is usable", async () => {
    await fetch(`${gw.url}/api/accounts/r-1`, json("PATCH", { routingPolicy: "preserve" }));
    for (let i = 0; i < 6; i++) expect(await pick()).not.toBe("r-1");
    for (const id of ["r-2", "r-3"])
      await services.apply([{ type: "account.pause", accountId: id }], { source: "test" });
    expect(await pick()).toBe("r-1");
    for (const id of ["r-2", "r-3"])
      await services.apply([{ type: "account.reactivate", accountId: id }], { source: "test" });
    await fetch(`${gw.url}/api/accounts/r-1`, json("PATCH", { routingPolicy: "normal" }));
  });

  test("unknown account → 404; bad policy → 400", async () => {
    const missing = await fetch(`${gw.url}/api/accounts/nope`, json("PATCH", { routingPolicy: "normal" }));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    const bad = await fetch(`${gw.url}/api/accounts/r-1`, json("PATCH", { routingPolicy: "greedy" }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("routingPolicy");
    const typo = await fetch(
      `${gw.url}/api/accounts/r-1`,
      json("PATCH", { routingPolicy: "normal", alias: "x" }),
    );
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as { error: { message: string } }).error.message).toContain("'alias'");
  });
});

describe("/api/sticky-sessions", () => {
  test("lists live bindings, filters by account and kind, refuses a bad kind", async () => {
    const owner = await pick({ "x-codex-turn-state": "turn-abc" });
    const all = (await (await fetch(`${gw.url}/api/sticky-sessions`)).json()) as {
      items: { key: string; kind: string; accountId: string }[];
    };
    expect(all.items).toContainEqual(
      expect.objectContaining({ key: "turn-abc", kind: "turn_state", accountId: owner }),
    );
    const byKind = (await (await fetch(`${gw.url}/api/sticky-sessions?kind=turn_state`)).json()) as {
      items: { kind: string }[];
    };
    expect(byKind.items.every((s) => s.kind === "turn_state")).toBe(true);
    const bad = await fetch(`${gw.url}/api/sticky-sessions?kind=nonsense`);
    expect(bad.status).toBe(400);
  });

  test("the routes are in the OpenAPI document", async () => {
    const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as { paths: Record<string, object> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/settings",
        "/api/sticky-sessions",
        "/api/sticky-sessions/{key}",
        "/api/accounts/{id}",
      ]),
    );
  });
});
