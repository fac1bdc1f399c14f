/**
 * Cross-site requests against the default install (no password, API-key auth off): a page on any
 * site the operator has open must not be able to change anything on `localhost:2455` or spend quota.
 * Each case here succeeded on the old main.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { jsonInit } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

const EVIL = "https://evil.example";

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return body.error;
}

function form(fields: Record<string, string>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.set(k, v);
  return f;
}

describe("admin API from a web page (default install)", () => {
  let gw: TestGateway;
  let accountId: string;
  beforeAll(async () => {
    gw = await startGateway();
    accountId = "acct-csrf";
    const { seedAccount } = await import("../support/accounts.ts");
    await seedAccount(gw.running.store.db, { id: accountId });
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("a cross-origin multipart POST cannot set the admin password", async () => {
    const res = await fetch(`${gw.url}/api/auth/password`, {
      method: "POST",
      headers: { origin: EVIL },
      body: form({ newPassword: "attacker-password" }),
    });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("cross_origin_refused");
    const state = (await (await fetch(`${gw.url}/api/auth/session`)).json()) as { passwordSet: boolean };
    expect(state.passwordSet).toBe(false);
  });

  test("a cross-origin JSON POST is refused too (Origin decides, not the content type)", async () => {
    const res = await fetch(`${gw.url}/api/api-keys`, {
      ...jsonInit("POST", { name: "evil" }),
      headers: { "content-type": "application/json", origin: EVIL },
    });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("cross_origin_refused");
  });

  test("Origin: null (sandboxed frame, file://) is refused", async () => {
    const res = await fetch(`${gw.url}/api/firewall/entries`, {
      method: "POST",
      headers: { origin: "null", "content-type": "application/json" },
      body: JSON.stringify({ entry: "192.0.2.0/24" }),
    });
    expect(res.status).toBe(403);
  });

  test("Sec-Fetch-Site: cross-site (or same-site) without Origin is refused", async () => {
    for (const site of ["cross-site", "same-site"]) {
      const res = await fetch(`${gw.url}/api/accounts/${accountId}/pause`, {
        method: "POST",
        headers: { "sec-fetch-site": site },
      });
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe("cross_origin_refused");
    }
  });

  test.each([
    ["/api/firewall/entries", { entry: "192.0.2.0/24" }],
    ["/api/api-keys", { name: "form-made" }],
    ["/api/auth/password", { newPassword: "a-form-password" }],
  ])("multipart POST %s (no Origin) is 415: the admin API takes JSON only", async (path, fields) => {
    const res = await fetch(`${gw.url}${path}`, { method: "POST", body: form(fields) });
    expect(res.status).toBe(415);
    expect((await errorOf(res)).code).toBe("unsupported_media_type");
  });

  test("form-urlencoded and text/plain bodies are 415 on any admin route", async () => {
    for (const type of ["application/x-www-form-urlencoded", "text/plain"]) {
      const res = await fetch(`${gw.url}/api/accounts/${accountId}/pause`, {
        method: "POST",
        headers: { "content-type": type },
        body: "x=1",
      });
      expect(res.status).toBe(415);
    }
    const listed = (await (await fetch(`${gw.url}/api/accounts/${accountId}`)).json()) as { status: string };
    expect(listed.status).toBe("active");
    const keys = (await (await fetch(`${gw.url}/api/api-keys`)).json()) as unknown[];
    expect(keys).toHaveLength(0);
    const fw = (await (await fetch(`${gw.url}/api/firewall`)).json()) as { entries: unknown[] };
    expect(fw.entries).toHaveLength(0);
  });

  test("the gateway's own origin and non-browser clients (no Origin) keep working", async () => {
    const own = await fetch(`${gw.url}/api/firewall/entries`, {
      method: "POST",
      headers: { origin: gw.url, "content-type": "application/json", "sec-fetch-site": "same-origin" },
      body: JSON.stringify({ entry: "192.0.2.0/24" }),
    });
    expect(own.status).toBe(201);
    const curl = await fetch(`${gw.url}/api/firewall/entries?entry=192.0.2.0/24`, { method: "DELETE" });
    expect(curl.status).toBe(200);
    // A safe method with a foreign Origin is a read; the browser keeps the answer from the page.
    expect((await fetch(`${gw.url}/api/firewall`, { headers: { origin: EVIL } })).status).toBe(200);
  });

  test("no CORS preflight is ever granted (a page cannot send a JSON body cross-origin)", async () => {
    for (const path of [
      "/api/api-keys",
      "/api/auth/password",
      "/v1/responses",
      "/backend-api/codex/responses",
    ]) {
      const res = await fetch(`${gw.url}${path}`, {
        method: "OPTIONS",
        headers: {
          origin: EVIL,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type, authorization",
        },
      });
      expect(res.status).toBeLessThan(500);
      for (const h of [
        "access-control-allow-origin",
        "access-control-allow-headers",
        "access-control-allow-methods",
      ])
        expect(res.headers.get(h)).toBeNull();
    }
    // Nor may a page read an answer: no CORS header on a plain cross-origin read either.
    const read = await fetch(`${gw.url}/api/accounts`, { headers: { origin: EVIL } });
    expect(read.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("a cross-origin WebSocket upgrade is refused", async () => {
    const res = await fetch(`${gw.url}/backend-api/codex/responses`, {
      headers: { origin: EVIL, upgrade: "websocket", connection: "upgrade" },
    });
    expect(res.status).toBe(403);
  });
});

describe("CODEX_LB_ALLOWED_ORIGINS", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { CODEX_LB_ALLOWED_ORIGINS: "https://admin.example.com" } });
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("a listed origin may change state; others may not", async () => {
    const send = (origin: string) =>
      fetch(`${gw.url}/api/firewall/entries`, {
        method: "POST",
        headers: { origin, "content-type": "application/json", "sec-fetch-site": "cross-site" },
        body: JSON.stringify({ entry: "192.0.2.0/24" }),
      });
    expect((await send("https://admin.example.com")).status).toBe(201);
    expect((await send("https://admin.example.com.evil.example")).status).toBe(403);
    expect((await send("http://admin.example.com")).status).toBe(403);
  });
});

describe("proxy routes from a web page", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "a1" }] });
  });
  afterAll(async () => {
    await env.stop();
  });

  test("a text/plain POST /v1/responses (a form a page can send) spends nothing: 415", async () => {
    const before = env.fake.requests.length;
    for (const path of ["/v1/responses", "/v1/chat/completions", "/backend-api/codex/responses"]) {
      const res = await fetch(`${env.gw.url}${path}`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ model: "gpt-5.4", input: "hi", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(415);
      const body = (await res.json()) as { error: { code: string; type: string } };
      expect(body.error).toMatchObject({ code: "unsupported_media_type", type: "invalid_request_error" });
    }
    expect(env.fake.requests.length).toBe(before);
  });

  test("a cross-origin JSON POST is refused with cross_origin_refused", async () => {
    const before = env.fake.requests.length;
    const res = await fetch(`${env.gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: EVIL },
      body: JSON.stringify({ model: "gpt-5.4", input: "hi" }),
    });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; type: string } };
    expect(body.error).toMatchObject({ code: "cross_origin_refused", type: "permission_error" });
    expect(env.fake.requests.length).toBe(before);
  });

  test("the openai SDK (no Origin) is served", async () => {
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "unused-locally" });
    const r = await client.responses.create({ model: "gpt-5.4", input: "hi" });
    expect(r.output_text).toContain("Hello");
  });
});
