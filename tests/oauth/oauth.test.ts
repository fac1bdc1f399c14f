import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { type AccountsWorld, identity, startAccountsWorld } from "../support/accounts.ts";

let w: AccountsWorld;
// The device poll's interval runs on the gateway's clock: the test moves it instead of waiting.
const clock = new FakeClock(Date.now());
beforeAll(async () => {
  w = await startAccountsWorld({ clock });
});
afterAll(async () => {
  await w.stop();
});

type Start = {
  flowId: string;
  method: string;
  authorizationUrl?: string;
  callbackUrl?: string;
  verificationUrl?: string;
  userCode?: string;
  intervalSeconds?: number;
  expiresInSeconds: number;
};
type Status = { status: string; errorMessage: string | null; accountId: string | null };

const start = async (method: "browser" | "device") => {
  const res = await fetch(`${w.gw.url}/api/oauth/start`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ method }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Start;
};
const status = async (flowId: string) =>
  (await (await fetch(`${w.gw.url}/api/oauth/status?flowId=${flowId}`)).json()) as Status;

/**
 * Moves the gateway's clock in 10 ms steps until `fn` holds (at most `timeoutMs` of gateway time
 * and 10 s of real time); between steps the real HTTP a timer started (a poll) gets a moment.
 */
async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 4_000) {
  const end = clock.now() + timeoutMs;
  const realEnd = performance.now() + 10_000;
  while (clock.now() < end && performance.now() < realEnd) {
    if (await fn()) return;
    await clock.advance(10);
    await Bun.sleep(1);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("browser login (authorization code + PKCE)", () => {
  test("authorize URL, callback listener, code exchange, account stored with a login event", async () => {
    const s = await start("browser");
    const url = new URL(s.authorizationUrl!);
    expect(`${url.origin}${url.pathname}`).toBe(`${w.server.url}/oauth/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: "code",
      client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
      redirect_uri: "http://localhost:1455/auth/callback",
      scope: "openid profile email offline_access",
      code_challenge_method: "S256",
      codex_cli_simplified_flow: "true",
    });
    expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Tests never bind 1455: the listener took an ephemeral port.
    const cb = new URL(s.callbackUrl!);
    expect(cb.port).not.toBe("1455");
    expect((await status(s.flowId)).status).toBe("pending");

    const who = identity("browser");
    const code = w.auth.authorize(who, url.searchParams.get("code_challenge"));
    const page = await fetch(
      `http://127.0.0.1:${cb.port}/auth/callback?code=${code}&state=${url.searchParams.get("state")}`,
    );
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Login complete");
    const st = await status(s.flowId);
    expect(st.status).toBe("success");
    const form = w.auth.state.lastExchange!;
    expect(form.get("redirect_uri")).toBe("http://localhost:1455/auth/callback");
    expect(form.get("client_id")).toBe("app_EMoamEEZ73f0CkXaXp7hrann");
    const acct = await w.account(st.accountId!);
    expect(acct).toMatchObject({
      email: who.email,
      chatgptAccountId: who.chatgptAccountId,
      status: "active",
    });
    const ev = (
      (await (await fetch(`${w.gw.url}/api/accounts/${st.accountId}/events`)).json()) as {
        items: Record<string, unknown>[];
      }
    ).items;
    expect(ev[0]).toMatchObject({ action: "account.login", source: "login", toStatus: "active" });
  });

  test("manual fallback: pasting the redirect URL completes the flow; a repeat reports the outcome", async () => {
    const s = await start("browser");
    const url = new URL(s.authorizationUrl!);
    const who = identity("manual");
    const code = w.auth.authorize(who, url.searchParams.get("code_challenge"));
    const pasted = `http://localhost:1455/auth/callback?code=${code}&state=${url.searchParams.get("state")}`;
    const post = () =>
      fetch(`${w.gw.url}/api/oauth/manual-callback`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ callbackUrl: pasted, flowId: s.flowId }),
      });
    const r = (await (await post()).json()) as Status;
    expect(r.status).toBe("success");
    expect((await w.account(r.accountId!)).email).toBe(who.email);
    const again = (await (await post()).json()) as Status;
    expect(again).toEqual(r);
  });

  test("a re-login of a reauth_required identity makes the same account active", async () => {
    const who = identity("relogin");
    const id = await w.importTokens(w.auth.issue(who));
    await w.gw.running.gateway.services.apply(
      [{ type: "account.deactivate", accountId: id, status: "reauth_required", reason: "test" }],
      { source: "test" },
    );
    const s = await start("browser");
    const url = new URL(s.authorizationUrl!);
    const code = w.auth.authorize(who, url.searchParams.get("code_challenge"));
    const res = await fetch(`${w.gw.url}/api/oauth/manual-callback`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        callbackUrl: `http://localhost:1455/auth/callback?code=${code}&state=${url.searchParams.get("state")}`,
      }),
    });
    expect(((await res.json()) as Status).accountId).toBe(id);
    expect((await w.account(id)).status).toBe("active");
  });

  test("refusals: denied consent, PKCE mismatch, unknown state, a non-URL", async () => {
    const s = await start("browser");
    const url = new URL(s.authorizationUrl!);
    const cb = new URL(s.callbackUrl!);
    const denied = await fetch(
      `http://127.0.0.1:${cb.port}/auth/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=${url.searchParams.get("state")}`,
    );
    expect(denied.status).toBe(400);
    const html = await denied.text();
    expect(html).toContain("Login failed");
    expect(html).toContain("&lt;b&gt;no&lt;/b&gt;");
    expect((await status(s.flowId)).status).toBe("error");

    const s2 = await start("browser");
    const u2 = new URL(s2.authorizationUrl!);
    const wrong = w.auth.authorize(identity("pkce"), "A".repeat(43));
    const bad = (await (
      await fetch(`${w.gw.url}/api/oauth/manual-callback`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          callbackUrl: `http://localhost:1455/auth/callback?code=${wrong}&state=${u2.searchParams.get("state")}`,
        }),
      })
    ).json()) as Status;
    expect(bad.status).toBe("error");
    expect(bad.errorMessage).toContain("PKCE verification failed");
    expect(bad.errorMessage).not.toContain(wrong);

    const unknown = (await (
      await fetch(`${w.gw.url}/api/oauth/manual-callback`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ callbackUrl: "http://localhost:1455/auth/callback?code=x&state=nope" }),
      })
    ).json()) as Status;
    expect(unknown.status).toBe("error");

    const notUrl = await fetch(`${w.gw.url}/api/oauth/manual-callback`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ callbackUrl: "just text" }),
    });
    expect(notUrl.status).toBe(400);
    expect((await fetch(`${w.gw.url}/api/oauth/status?flowId=nope`)).status).toBe(404);
    const badMethod = await fetch(`${w.gw.url}/api/oauth/start`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ method: "carrier-pigeon" }),
    });
    expect(badMethod.status).toBe(400);
  });
});

describe("device-code login", () => {
  test("user code, polling that honours interval and slow_down, then the account is stored", async () => {
    const who = identity("device");
    w.auth.state.deviceIdentity = who;
    w.auth.state.deviceInterval = "0.05";
    w.auth.state.deviceSteps = ["pending", { slowDownInterval: 0.3 }, "pending", "approve"];
    w.auth.state.devicePolls.length = 0;
    const s = await start("device");
    expect(s).toMatchObject({
      method: "device",
      userCode: "ABCD-1234",
      verificationUrl: `${w.server.url}/codex/device`,
      intervalSeconds: 0.05,
    });
    await until("device login", async () => (await status(s.flowId)).status === "success");
    const polls = w.auth.state.devicePolls;
    expect(polls).toHaveLength(4);
    // Poll times on the gateway's clock.
    const gaps = polls.slice(1).map((t, i) => t - polls[i]!);
    expect(gaps[0]!).toBeGreaterThanOrEqual(40);
    // After slow_down the interval is 0.3 s for every later poll.
    expect(gaps[1]!).toBeGreaterThanOrEqual(280);
    expect(gaps[2]!).toBeGreaterThanOrEqual(280);
    const st = await status(s.flowId);
    expect((await w.account(st.accountId!)).email).toBe(who.email);
  });

  test("no login secret reaches the log", async () => {
    const log = w.gw.logText();
    expect(log).toContain("login completed");
    for (const t of w.auth.state.issued) expect(log).not.toContain(t);
  });
});
