/**
 * Forged forwarding headers and same-host proxies must never make a remote caller "local" (admin
 * without a password, keyless proxy) nor move it to another limiter bucket. Each case here was a
 * hole on the old main.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jsonInit, localFetch, remoteFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

interface SessionState {
  local: boolean;
  authenticated: boolean;
}
const sessionOf = async (res: Response) => (await res.json()) as SessionState;
const responsesPost = (headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify({ model: "gpt-5.4", input: "hi" }),
});

describe("a trusted proxy on this machine (CODEX_LB_TRUSTED_PROXIES=127.0.0.1)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { CODEX_LB_TRUSTED_PROXIES: "127.0.0.1" } });
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("a client's own `Forwarded: for=127.0.0.1` passed through next to the proxy's XFF is not believed", async () => {
    const headers = { "x-forwarded-for": "203.0.113.7", forwarded: "for=127.0.0.1" };
    const s = await sessionOf(await fetch(`${gw.url}/api/auth/session`, { headers }));
    expect(s.local).toBe(false);
    expect(s.authenticated).toBe(false);
    // No keyless proxy for it either.
    const res = await fetch(`${gw.url}/v1/responses`, responsesPost(headers));
    expect(res.status).toBe(401);
    // Nor can it set the first password without the bootstrap token.
    const pw = await fetch(`${gw.url}/api/auth/password`, {
      ...jsonInit("POST", { newPassword: "attacker-password" }),
      headers: { "content-type": "application/json", ...headers },
    });
    expect(pw.status).toBe(401);
  });

  test("the proxy adding no header at all does not make its callers local", async () => {
    const s = await sessionOf(await fetch(`${gw.url}/api/auth/session`));
    expect(s.local).toBe(false);
    expect((await fetch(`${gw.url}/v1/responses`, responsesPost())).status).toBe(401);
  });

  test("even `X-Forwarded-For: 127.0.0.1` through the trusted proxy is remote (relayed = remote)", async () => {
    const s = await sessionOf(
      await fetch(`${gw.url}/api/auth/session`, { headers: { "x-forwarded-for": "127.0.0.1" } }),
    );
    expect(s.local).toBe(false);
  });

  test("the login limiter counts the XFF client, whatever Forwarded says", async () => {
    await localFetch(gw, "/api/auth/password", jsonInit("POST", { newPassword: "the real password" }));
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${gw.url}/api/auth/login`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-forwarded-for": "203.0.113.8",
          // A fresh claim per attempt: on the old main, each one was a new limiter bucket.
          forwarded: `for=198.51.100.${i + 1}`,
        },
        body: JSON.stringify({ password: "wrong guess" }),
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 8)).toEqual(Array(8).fill(401));
    expect(statuses.slice(8)).toEqual([429, 429]);
  });
});

describe("no trusted proxy (default)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("a loopback peer without forwarding headers and with a loopback Host is local", async () => {
    expect((await sessionOf(await fetch(`${gw.url}/api/auth/session`))).local).toBe(true);
  });

  test.each([
    ["x-forwarded-for", "203.0.113.7"],
    ["forwarded", "for=203.0.113.7"],
    ["x-real-ip", "203.0.113.7"],
    ["x-forwarded-for", ""],
  ])("an unlisted same-host proxy adding %s makes the caller remote", async (name, value) => {
    const s = await sessionOf(await fetch(`${gw.url}/api/auth/session`, { headers: { [name]: value } }));
    expect(s.local).toBe(false);
  });

  test("a remote peer's headers are ignored: it stays remote", async () => {
    const s = await sessionOf(
      await remoteFetch(gw, "/api/auth/session", { headers: { "x-forwarded-for": "127.0.0.1" } }),
    );
    expect(s.local).toBe(false);
  });

  test("a foreign Host (DNS rebinding) on a loopback peer is not local", async () => {
    const s = await sessionOf(
      await gw.running.gateway.fetch(new Request("http://rebind.example:2455/api/auth/session"), "127.0.0.1"),
    );
    expect(s.local).toBe(false);
  });
});
