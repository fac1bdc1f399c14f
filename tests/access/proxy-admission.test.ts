import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jsonInit, REMOTE_IP, remoteFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

// No account is configured here: a request that passes admission (and the key's model and limit
// checks) reaches account selection and gets 503 no_accounts; one refused at admission gets 401
// before any route (or body) is touched.
const PASSED = 503;

let gw: TestGateway;
let key: string;
let keyId: string;
beforeAll(async () => {
  gw = await startGateway();
  const res = await fetch(`${gw.url}/api/api-keys`, jsonInit("POST", { name: "admission" }));
  ({ key, id: keyId } = (await res.json()) as { key: string; id: string });
});
afterAll(async () => {
  await gw.stop();
});

const setAuth = (on: boolean) =>
  fetch(`${gw.url}/api/settings/access`, jsonInit("PUT", { apiKeyAuthEnabled: on }));
const post = (headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify({ model: "gpt-5.4", input: "hi" }),
});
async function errorOf(res: Response): Promise<{ code: string; type: string; message: string }> {
  return ((await res.json()) as { error: { code: string; type: string; message: string } }).error;
}

describe("apiKeyAuthEnabled off (default)", () => {
  test("a local client needs no key", async () => {
    expect((await fetch(`${gw.url}/v1/responses`, post())).status).toBe(PASSED);
    expect((await fetch(`${gw.url}/backend-api/codex/responses`, post())).status).toBe(PASSED);
  });

  test("a local client's foreign bearer token (not sk-clb-) is ignored", async () => {
    expect(
      (await fetch(`${gw.url}/v1/responses`, post({ authorization: "Bearer sk-test-whatever" }))).status,
    ).toBe(PASSED);
  });

  test("a local client's wrong sk-clb- key is refused (it was meant as a gateway key)", async () => {
    const res = await fetch(
      `${gw.url}/v1/responses`,
      post({ authorization: `Bearer sk-clb-${"x".repeat(43)}` }),
    );
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe("invalid_api_key");
  });

  test("a remote client is refused with 401 — key or not — so the proxy is never open by accident", async () => {
    for (const headers of [{}, { authorization: `Bearer ${key}` }] as Record<string, string>[]) {
      const res = await remoteFetch(gw, "/v1/responses", post(headers));
      expect(res.status).toBe(401);
      const err = await errorOf(res);
      expect(err).toMatchObject({ code: "invalid_api_key", type: "authentication_error" });
      expect(err.message).toContain("apiKeyAuthEnabled");
    }
  });

  test("loopback socket with a forwarding header from an untrusted proxy is not local", async () => {
    const res = await fetch(`${gw.url}/v1/responses`, post({ "x-forwarded-for": REMOTE_IP }));
    expect(res.status).toBe(401);
  });

  test("a loopback peer with a foreign Host (DNS rebinding) is not local", async () => {
    const req = new Request("http://evil.example/v1/responses", post());
    expect((await gw.running.gateway.fetch(req, "127.0.0.1")).status).toBe(401);
  });

  test("the refusal is logged with the client address", async () => {
    await remoteFetch(gw, "/v1/models", { headers: { "x-request-id": "refused-remote-1" } });
    await Bun.sleep(10);
    const line = gw.logs().find((l) => l.requestId === "refused-remote-1" && l.code === "invalid_api_key");
    expect(line).toMatchObject({ clientIp: REMOTE_IP, path: "/v1/models" });
  });
});

describe("apiKeyAuthEnabled on", () => {
  beforeAll(async () => {
    expect((await setAuth(true)).status).toBe(200);
  });
  afterAll(async () => {
    await setAuth(false);
  });

  test("no key → 401 naming how to send one, for any proxy path", async () => {
    for (const path of [
      "/v1/responses",
      "/v1/chat/completions",
      "/v1/models",
      "/backend-api/codex/responses",
    ]) {
      const res = await fetch(`${gw.url}${path}`, post());
      expect(res.status).toBe(401);
      expect((await errorOf(res)).message).toContain("Authorization: Bearer");
    }
  });

  test("a wrong key → 401", async () => {
    const res = await remoteFetch(gw, "/v1/responses", post({ authorization: "Bearer nope" }));
    expect(res.status).toBe(401);
    expect((await errorOf(res)).message).toBe("Invalid API key");
  });

  test("a valid key passes from anywhere, as Bearer or x-api-key", async () => {
    expect((await remoteFetch(gw, "/v1/responses", post({ authorization: `bearer ${key}` }))).status).toBe(
      PASSED,
    );
    expect((await remoteFetch(gw, "/v1/responses", post({ "x-api-key": key }))).status).toBe(PASSED);
    expect((await fetch(`${gw.url}/v1/responses`, post({ "x-api-key": key }))).status).toBe(PASSED);
  });

  test("admission records the key on the request (seen by /v1/usage) and its last use", async () => {
    const res = await fetch(`${gw.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
    expect(((await res.json()) as { api_key_id: string }).api_key_id).toBe(keyId);
    const row = await gw.running.store.db
      .selectFrom("api_keys")
      .select("last_used_at")
      .where("id", "=", keyId)
      .executeTakeFirstOrThrow();
    expect(row.last_used_at).toBeGreaterThan(Date.now() - 60_000);
  });

  test("a deactivated key → 401; reactivated it works again", async () => {
    await fetch(`${gw.url}/api/api-keys/${keyId}`, jsonInit("PATCH", { isActive: false }));
    const res = await fetch(`${gw.url}/v1/responses`, post({ authorization: `Bearer ${key}` }));
    expect(res.status).toBe(401);
    expect((await errorOf(res)).message).toContain("deactivated");
    await fetch(`${gw.url}/api/api-keys/${keyId}`, jsonInit("PATCH", { isActive: true }));
    expect((await fetch(`${gw.url}/v1/responses`, post({ authorization: `Bearer ${key}` }))).status).toBe(
      PASSED,
    );
  });

  test("an expired key → 401", async () => {
    const res = await fetch(
      `${gw.url}/api/api-keys`,
      jsonInit("POST", { name: "old", expiresAt: Date.now() - 1000 }),
    );
    const expired = (await res.json()) as { key: string };
    const r = await fetch(`${gw.url}/v1/responses`, post({ authorization: `Bearer ${expired.key}` }));
    expect(r.status).toBe(401);
    expect((await errorOf(r)).message).toContain("expired");
  });

  test("/health stays public", async () => {
    expect((await remoteFetch(gw, "/health")).status).toBe(200);
  });
});

describe("the policy is one runtime setting", () => {
  test("PUT /api/settings and /api/settings/access change the same value", async () => {
    const put = await fetch(`${gw.url}/api/settings`, jsonInit("PUT", { apiKeyAuthEnabled: true }));
    expect(((await put.json()) as { apiKeyAuthEnabled: boolean }).apiKeyAuthEnabled).toBe(true);
    expect(await (await fetch(`${gw.url}/api/settings/access`)).json()).toEqual({ apiKeyAuthEnabled: true });
    expect((await fetch(`${gw.url}/v1/responses`, post())).status).toBe(401);
    await setAuth(false);
    const doc = (await (await fetch(`${gw.url}/api/settings`)).json()) as { apiKeyAuthEnabled: boolean };
    expect(doc.apiKeyAuthEnabled).toBe(false);
    expect((await fetch(`${gw.url}/v1/responses`, post())).status).toBe(PASSED);
  });

  test("CODEX_LB_API_KEY_AUTH_ENABLED=true makes keys required from the start", async () => {
    const strict = await startGateway({ env: { CODEX_LB_API_KEY_AUTH_ENABLED: "true" } });
    try {
      const res = await fetch(`${strict.url}/v1/responses`, post());
      expect(res.status).toBe(401);
      expect((await errorOf(res)).code).toBe("invalid_api_key");
    } finally {
      await strict.stop();
    }
  });
});
