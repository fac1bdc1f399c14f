import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jsonInit, remoteFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.stop();
});

interface KeyView {
  id: string;
  name: string;
  key?: string;
  keyPrefix: string;
  isActive: boolean;
  expiresAt: number | null;
  allowedModels: string[] | null;
  lastUsedAt: number | null;
  limits: {
    limitType: string;
    limitWindow: string;
    maxValue: number;
    currentValue: number;
    resetsAt: number;
  }[];
}

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.url}${path}`, jsonInit(method, body));
}
async function createKey(body: Record<string, unknown>): Promise<KeyView> {
  const res = await call("POST", "/api/api-keys", body);
  expect(res.status).toBe(201);
  return (await res.json()) as KeyView;
}
const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

describe("/api/api-keys", () => {
  test("create shows the key once; the store keeps only its SHA-256 and prefix", async () => {
    const k = await createKey({
      name: "  ci bot ",
      allowedModels: ["gpt-5.4"],
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
    });
    expect(k.key).toMatch(/^sk-clb-[A-Za-z0-9_-]{43}$/);
    expect(k.keyPrefix).toBe(k.key!.slice(0, 15));
    expect(k.name).toBe("ci bot");
    expect(k.limits[0]).toMatchObject({
      limitType: "total_tokens",
      limitWindow: "daily",
      maxValue: 1000,
      currentValue: 0,
    });
    const row = await gw.running.store.db
      .selectFrom("api_keys")
      .selectAll()
      .where("id", "=", k.id)
      .executeTakeFirstOrThrow();
    const hash = new Bun.CryptoHasher("sha256").update(k.key!).digest("hex");
    expect(row.key_hash).toBe(hash);
    expect(JSON.stringify(row)).not.toContain(k.key!);
    const listed = (await (await call("GET", "/api/api-keys")).json()) as KeyView[];
    expect(listed.find((x) => x.id === k.id)).not.toHaveProperty("key");
    const one = (await (await call("GET", `/api/api-keys/${k.id}`)).json()) as KeyView;
    expect(one).not.toHaveProperty("key");
    expect(one.allowedModels).toEqual(["gpt-5.4"]);
    expect(gw.logText()).not.toContain(k.key!);
  });

  test("update, regenerate (old key stops at once) and delete; each writes an audit row", async () => {
    await call("PUT", "/api/settings/access", { apiKeyAuthEnabled: true });
    const k = await createKey({ name: "rotating" });
    expect((await fetch(`${gw.url}/v1/usage`, bearer(k.key!))).status).toBe(200);
    const patched = (await (
      await call("PATCH", `/api/api-keys/${k.id}`, { name: "renamed", allowedModels: null })
    ).json()) as KeyView;
    expect(patched.name).toBe("renamed");
    const regen = (await (await call("POST", `/api/api-keys/${k.id}/regenerate`)).json()) as KeyView;
    expect(regen.key).not.toBe(k.key);
    expect(regen.id).toBe(k.id);
    expect((await fetch(`${gw.url}/v1/usage`, bearer(k.key!))).status).toBe(401);
    expect((await fetch(`${gw.url}/v1/usage`, bearer(regen.key!))).status).toBe(200);
    expect((await call("DELETE", `/api/api-keys/${k.id}`)).status).toBe(200);
    expect((await fetch(`${gw.url}/v1/usage`, bearer(regen.key!))).status).toBe(401);
    expect((await call("GET", `/api/api-keys/${k.id}`)).status).toBe(404);
    const audit = await gw.running.store.db.selectFrom("audit_logs").select(["action", "details"]).execute();
    const mine = audit.filter((a) => a.details?.includes(k.id)).map((a) => a.action);
    expect(mine).toEqual(["api_key.created", "api_key.updated", "api_key.regenerated", "api_key.deleted"]);
    expect(audit.map((a) => a.action)).toContain("settings.changed");
    await call("PUT", "/api/settings/access", { apiKeyAuthEnabled: false });
  });

  test("bad input gets a 400 naming the problem; unknown ids a 404", async () => {
    const dup = await call("POST", "/api/api-keys", {
      name: "x",
      limits: [
        { limitType: "cost_usd", limitWindow: "weekly", maxValue: 5 },
        { limitType: "cost_usd", limitWindow: "weekly", maxValue: 6 },
      ],
    });
    expect(dup.status).toBe(400);
    expect(((await dup.json()) as { error: { message: string } }).error.message).toContain("Duplicate limit");
    const badWindow = await call("POST", "/api/api-keys", {
      name: "x",
      limits: [{ limitType: "cost_usd", limitWindow: "hourly", maxValue: 5 }],
    });
    expect(badWindow.status).toBe(400);
    expect((await call("POST", "/api/api-keys", { name: "   " })).status).toBe(400);
    expect((await call("POST", "/api/api-keys", {})).status).toBe(400);
    expect((await call("PATCH", "/api/api-keys/nope", { name: "y" })).status).toBe(404);
    expect((await call("POST", "/api/api-keys/nope/regenerate")).status).toBe(404);
    expect((await call("DELETE", "/api/api-keys/nope")).status).toBe(404);
  });

  test("the routes are in the OpenAPI document", async () => {
    const doc = (await (await call("GET", "/docs/json")).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths["/api/api-keys"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/api/api-keys/{id}"] ?? {}).sort()).toEqual(["delete", "get", "patch"]);
    expect(doc.paths["/api/api-keys/{id}/regenerate"]).toHaveProperty("post");
    expect(doc.paths["/v1/usage"]).toHaveProperty("get");
    expect(doc.paths["/api/firewall"]).toHaveProperty("put");
    expect(doc.paths["/api/settings/access"]).toHaveProperty("put");
    expect(doc.paths["/api/auth/login"]).toHaveProperty("post");
  });
});

describe("GET /v1/usage", () => {
  test("answers the key's own usage and limits from its request logs", async () => {
    const k = await createKey({
      name: "usage",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
    });
    await gw.running.store.db
      .insertInto("request_logs")
      .values({
        requested_at: Date.now(),
        request_id: "u1",
        api_key_id: k.id,
        model: "gpt-5.4",
        endpoint: "/v1/responses",
        status: "success",
        input_tokens: 300,
        cached_input_tokens: 100,
        output_tokens: 50,
      } as never)
      .execute();
    // A key-only route: a valid key is enough from anywhere (it proxies nothing).
    const res = await remoteFetch(gw, "/v1/usage", bearer(k.key!));
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      api_key_id: string;
      usage: Record<string, number>;
      limits: Record<string, unknown>[];
    };
    expect(body.api_key_id).toBe(k.id);
    expect(body.usage).toMatchObject({
      request_count: 1,
      input_tokens: 300,
      cached_input_tokens: 100,
      output_tokens: 50,
      total_tokens: 350,
    });
    expect(body.usage.cost_usd).toBeCloseTo((200 * 2.5 + 100 * 0.25 + 50 * 15) / 1e6, 12);
    expect(body.limits).toEqual([
      expect.objectContaining({
        limit_type: "total_tokens",
        limit_window: "daily",
        max_value: 1000,
        current_value: 350,
        remaining_value: 650,
      }),
    ]);
  });

  test("always needs a key, even from this machine", async () => {
    const res = await fetch(`${gw.url}/v1/usage`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; type: string } };
    expect(body.error).toMatchObject({ code: "invalid_api_key", type: "authentication_error" });
  });
});
