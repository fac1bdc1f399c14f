/**
 * Every admin change writes an audit row: accounts (import, pause, reactivate, routing policy,
 * export, delete), runtime settings, sticky sessions and login flows (API keys, firewall and
 * password are covered by their own tests).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { authJsonOf } from "../support/accounts.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "au1" }] });
});
afterAll(async () => {
  await env.stop();
});

const call = (method: string, path: string, body?: unknown) =>
  fetch(`${env.gw.url}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      "x-request-id": `audit-${method}-${path.replaceAll("/", ".")}`,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function auditRows() {
  return env.db
    .selectFrom("audit_logs")
    .select(["action", "actor_ip", "request_id", "details"])
    .orderBy("id")
    .execute();
}

test("each admin change leaves one audit row with the actor's address and request id", async () => {
  const bundle = env.auth.issue({
    email: "audit@example.com",
    chatgptAccountId: "acct-audit",
    chatgptUserId: "user-audit",
  });
  const imported = await call("POST", "/api/accounts/import", authJsonOf(bundle));
  expect(imported.status).toBe(200);
  const { accountId } = (await imported.json()) as { accountId: string };
  const steps: [string, string, unknown, number, string][] = [
    ["POST", "/api/accounts/au1/pause", undefined, 200, "account.pause"],
    ["POST", "/api/accounts/au1/reactivate", undefined, 200, "account.reactivate"],
    ["PATCH", "/api/accounts/au1", { routingPolicy: "preserve" }, 200, "account.routing_policy"],
    ["POST", `/api/accounts/${accountId}/export/auth`, undefined, 200, "account.export"],
    ["DELETE", `/api/accounts/${accountId}`, undefined, 200, "account.delete"],
    ["PUT", "/api/settings", { routingStrategy: "round_robin" }, 200, "settings.update"],
    ["POST", "/api/oauth/start", { method: "browser" }, 200, "oauth.start"],
  ];
  for (const [method, path, body, status] of steps)
    expect([path, (await call(method, path, body)).status]).toEqual([path, status]);
  // A refused change (unknown account) writes nothing.
  expect((await call("POST", "/api/accounts/nope/pause")).status).toBe(404);
  const rows = await auditRows();
  expect(rows.map((r) => r.action)).toEqual(["account.import", ...steps.map((s) => s[4])]);
  for (const r of rows) {
    expect(r.actor_ip).toBe("127.0.0.1");
    expect(r.request_id).toStartWith("audit-");
  }
  expect(JSON.parse(rows.find((r) => r.action === "account.routing_policy")!.details!)).toEqual({
    accountId: "au1",
    routingPolicy: "preserve",
  });
  // No token reaches the audit trail.
  const text = JSON.stringify(rows);
  for (const secret of [bundle.accessToken, bundle.refreshToken, bundle.idToken])
    expect(text).not.toContain(secret);
});

test("deleting a sticky session is audited", async () => {
  // Bindings change only by actions (the core applies them).
  await env.gw.running.gateway.services.apply(
    [{ type: "sticky.bind", key: "sess-audit", kind: "session", accountId: "au1" }],
    { source: "test" },
  );
  expect((await call("DELETE", "/api/sticky-sessions/sess-audit")).status).toBe(200);
  const last = (await auditRows()).at(-1)!;
  expect(last.action).toBe("sticky_session.delete");
  expect(JSON.parse(last.details!)).toEqual({ key: "sess-audit" });
});

test("an account change and its audit row are one transaction: no audit row, no change", async () => {
  const { sql } = await import("kysely");
  const before = await env.db
    .selectFrom("accounts")
    .select(["status", "version", "routing_policy"])
    .where("id", "=", "au1")
    .executeTakeFirstOrThrow();
  await sql`CREATE TRIGGER audit_down BEFORE INSERT ON audit_logs BEGIN SELECT RAISE(ABORT, 'audit store down'); END`.execute(
    env.db,
  );
  try {
    const policy = before.routing_policy === "burn_first" ? "preserve" : "burn_first";
    const res = await call("PATCH", "/api/accounts/au1", { routingPolicy: policy });
    expect(res.status).toBeGreaterThanOrEqual(500);
    const after = await env.db
      .selectFrom("accounts")
      .select(["status", "version", "routing_policy"])
      .where("id", "=", "au1")
      .executeTakeFirstOrThrow();
    expect(after.version).toBe(before.version);
    expect(after.routing_policy).toBe(before.routing_policy);
  } finally {
    await sql`DROP TRIGGER audit_down`.execute(env.db);
  }
  // With the audit trail back, the same change applies and is audited.
  const ok = await call("PATCH", "/api/accounts/au1", { routingPolicy: "burn_first" });
  expect(ok.status).toBe(200);
  expect((await auditRows()).at(-1)?.action).toBe("account.routing_policy");
});
