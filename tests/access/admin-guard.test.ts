import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publicAdminPaths } from "../../src/access/admin-auth/guard.ts";
import { SessionStore } from "../../src/access/admin-auth/sessions.ts";
import { surfaceOf } from "../../src/core/surface.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";
import { adminLogin, REMOTE_IP, remoteFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

interface RouteInfo {
  method: string;
  path: string;
}

/** Every guarded admin route of the running app, read from Elysia's route table (not listed by hand). */
function guardedRoutes(gw: TestGateway): RouteInfo[] {
  const routes = (gw.running.gateway.app.routes as RouteInfo[]).filter(
    (r) => surfaceOf(r.path) === "admin" && !publicAdminPaths.includes(r.path),
  );
  return routes.map((r) => ({
    method: r.method === "ALL" ? "GET" : r.method,
    path: r.path.replace(/:[^/]+/g, "x"),
  }));
}

async function expect401(
  gw: TestGateway,
  routes: RouteInfo[],
  peer: string,
  headers: Record<string, string> = {},
) {
  const failures: string[] = [];
  for (const r of routes) {
    const init: RequestInit = {
      method: r.method,
      headers: { "content-type": "application/json", ...headers },
    };
    if (r.method !== "GET" && r.method !== "HEAD") init.body = "{}";
    const res = await remoteFetch(gw, r.path, init, peer);
    const body = (await res.json()) as { error?: { code?: string } };
    if (res.status !== 401 || body.error?.code !== "authentication_required")
      failures.push(`${r.method} ${r.path} → ${res.status}`);
  }
  expect(failures).toEqual([]);
}

describe("every admin route needs admin access (route table walk)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("the walk covers the admin API, the docs and this issue's routes", () => {
    const paths = guardedRoutes(gw).map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        "GET /docs",
        "GET /docs/json",
        "GET /api/plugins",
        "POST /api/api-keys",
        "PUT /api/firewall",
        "PUT /api/settings/access",
        "POST /api/auth/totp/setup",
      ]),
    );
    expect(paths.length).toBeGreaterThan(15);
  });

  test("no password yet: a remote request gets 401 from every guarded route", async () => {
    await expect401(gw, guardedRoutes(gw), REMOTE_IP);
    await expect401(gw, guardedRoutes(gw), "2001:db8::99");
  });

  test("password set: remote and loopback requests without a session get 401 from every guarded route", async () => {
    const cookie = await adminLogin(gw);
    await expect401(gw, guardedRoutes(gw), REMOTE_IP);
    await expect401(gw, guardedRoutes(gw), "127.0.0.1");
    await expect401(gw, guardedRoutes(gw), "127.0.0.1", { cookie: "codex_lb_session=guess" });
    // ... and the session opens them (GET routes checked: no side effects). A route may still
    // refuse the request itself (e.g. a missing required query parameter), but never as unauthenticated.
    for (const r of guardedRoutes(gw).filter((x) => x.method === "GET" && !x.path.includes("/x"))) {
      const res = await remoteFetch(gw, r.path, { headers: { cookie } });
      expect([r.path, res.status === 401 || res.status === 403]).toEqual([r.path, false]);
      expect([r.path, res.status < 500]).toEqual([r.path, true]);
    }
  });

  test("public routes stay reachable: /health, session state, login", async () => {
    expect((await remoteFetch(gw, "/health")).status).toBe(200);
    expect((await remoteFetch(gw, "/api/auth/session")).status).toBe(200);
  });
});

describe("SessionStore expiry", () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "codex-lb-sessions-"));
    store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const MIN = 60_000;
  test("idle expiry: each use extends it, a quiet gap ends it", async () => {
    const s = new SessionStore(store.db, { idleMs: 10 * MIN, maxMs: 120 * MIN });
    const t0 = 1_000_000_000_000;
    const token = await s.create("127.0.0.1", t0);
    expect(await s.check(token, t0 + 9 * MIN)).toBe(true);
    expect(await s.check(token, t0 + 18 * MIN)).toBe(true);
    expect(await s.check(token, t0 + 29 * MIN)).toBe(false);
    expect(await s.check(token, t0 + 18 * MIN)).toBe(false); // deleted, not merely stale
  });

  test("absolute expiry: ends however active", async () => {
    const s = new SessionStore(store.db, { idleMs: 10 * MIN, maxMs: 30 * MIN });
    const t0 = 1_000_000_000_000;
    const token = await s.create(null, t0);
    for (let t = t0 + 5 * MIN; t < t0 + 30 * MIN; t += 5 * MIN) expect(await s.check(token, t)).toBe(true);
    expect(await s.check(token, t0 + 30 * MIN)).toBe(false);
  });

  test("revoke and revokeAll", async () => {
    const s = new SessionStore(store.db, { idleMs: 10 * MIN, maxMs: 30 * MIN });
    const t0 = 1_000_000_000_000;
    const a = await s.create(null, t0);
    const b = await s.create(null, t0);
    await s.revoke(a);
    expect(await s.check(a, t0 + 1)).toBe(false);
    expect(await s.check(b, t0 + 1)).toBe(true);
    await s.revokeAll();
    expect(await s.check(b, t0 + 2)).toBe(false);
    expect(await s.check(null, t0)).toBe(false);
  });
});
