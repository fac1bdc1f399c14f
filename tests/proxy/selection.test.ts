import { afterEach, describe, expect, test } from "bun:test";
import { getSnapshot } from "../../src/accounts/snapshots.ts";
import { definePlugin } from "../../src/plugin-host/api.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv | null = null;
afterEach(async () => {
  await env?.stop();
  env = null;
});

const ask = (e: ProxyEnv, path = "/v1/responses") =>
  fetch(`${e.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
  });

describe("account selection", () => {
  test("an account whose credentials cannot be had is skipped without calling the upstream", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a", withoutTokens: true }, { id: "b" }] });
    env.fake.always("chatgpt-b", { kind: "text", text: "b" });
    expect((await ask(env)).status).toBe(200);
    expect(env.fake.requests.map((r) => r.chatgptAccountId)).toEqual(["chatgpt-b"]);
    expect(env.inFlight("a")).toBe(0);
  });

  test("a request.reject from account.select is the answer, with the catalogue's status", async () => {
    const gate = definePlugin({
      name: "test.gate",
      setup(ctx) {
        ctx.on(
          "account.select",
          () => ({ type: "request.reject", code: "proxy_overloaded", message: "busy here" }),
          {
            order: -10,
          },
        );
      },
    });
    env = await startProxyEnv({ accounts: [{ id: "a" }], plugins: [gate] });
    const res = await ask(env);
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: Record<string, unknown> }).error).toMatchObject({
      code: "proxy_overloaded",
      type: "rate_limit_error",
      message: "busy here",
    });
    expect(env.fake.requests.length).toBe(0);
  });

  test("no account configured: 503 no_accounts", async () => {
    env = await startProxyEnv();
    const res = await ask(env, "/backend-api/codex/responses");
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: Record<string, unknown> }).error).toMatchObject({
      code: "no_accounts",
      type: "server_error",
    });
  });

  test("an account whose reset has passed is used again and becomes active", async () => {
    env = await startProxyEnv({
      accounts: [{ id: "a", status: "rate_limited", resetAt: Date.now() - 1000 }],
    });
    expect((await ask(env)).status).toBe(200);
    await Bun.sleep(50);
    expect((await getSnapshot(env.db, "a"))!.status).toBe("active");
  });
});
