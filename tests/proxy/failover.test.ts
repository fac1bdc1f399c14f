import { afterEach, describe, expect, test } from "bun:test";
import { getSnapshot } from "../../src/accounts/snapshots.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv | null = null;
afterEach(async () => {
  await env?.stop();
  env = null;
});

const ask = (e: ProxyEnv, path = "/v1/responses", extra: Record<string, unknown> = {}) =>
  fetch(`${e.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi", ...extra }),
  });

const usageLimit = (extra: Record<string, unknown> = {}) => ({
  kind: "http_error" as const,
  status: 429,
  body: {
    error: {
      type: "usage_limit_reached",
      code: "usage_limit_reached",
      message: "The usage limit has been reached",
      ...extra,
    },
  },
});

describe("failover before the first byte", () => {
  test("first account answers 429 usage_limit_reached: every request succeeds through the second; the first is rate_limited for an hour", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
    env.fake.always("chatgpt-a", usageLimit({ resets_in_seconds: 3600 }));
    env.fake.always("chatgpt-b", { kind: "text", text: "from b" });
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) {
      const res = await ask(env);
      expect(res.status).toBe(200);
      expect(
        ((await res.json()) as { output: { content: { text: string }[] }[] }).output[0]!.content[0]!.text,
      ).toBe("from b");
    }
    const a = await getSnapshot(env.db, "a");
    expect(a!.status).toBe("rate_limited");
    expect(a!.resetAt! - t0).toBeGreaterThan(3590_000);
    expect(a!.resetAt! - t0).toBeLessThan(3610_000);
    // Once rate-limited it is no longer asked.
    expect(env.fake.requests.filter((r) => r.chatgptAccountId === "chatgpt-a").length).toBe(1);
    const events = await env.db
      .selectFrom("account_events")
      .selectAll()
      .where("account_id", "=", "a")
      .execute();
    expect(events.map((e) => [e.action, e.to_status, e.source, e.plugin])).toEqual([
      ["account.rate_limit", "rate_limited", "upstream.failed", "codex-lb.upstream-failover"],
    ]);
    expect([...env!.tokens.keys()].every((id) => env!.inFlight(id) === 0)).toBe(true);
  });

  test("both accounts exhausted: 429 usage_limit_reached with the earliest resets_at", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
    const now = Math.floor(Date.now() / 1000);
    env.fake.always("chatgpt-a", usageLimit({ resets_at: now + 7200 }));
    env.fake.always("chatgpt-b", usageLimit({ resets_at: now + 1800 }));
    const res = await ask(env);
    expect(res.status).toBe(429);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(error.code).toBe("usage_limit_reached");
    expect(error.type).toBe("usage_limit_reached");
    expect(error.resets_at).toBe(now + 1800);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(1700);
    // The next request is refused without calling the upstream.
    const calls = env.fake.requests.length;
    const again = await ask(env, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }] });
    expect(again.status).toBe(429);
    expect(env.fake.requests.length).toBe(calls);
  });

  test("an error as the first SSE event of a 200 fails over the same way (quota → quota_exceeded)", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
    env.fake.always("chatgpt-a", {
      kind: "sse_error",
      error: { code: "insufficient_quota", message: "no quota" },
    });
    env.fake.always("chatgpt-b", { kind: "text", text: "b" });
    const res = await ask(env, "/backend-api/codex/responses");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("response.completed");
    expect(text).not.toContain("insufficient_quota");
    expect((await getSnapshot(env.db, "a"))!.status).toBe("quota_exceeded");
  });

  test("5xx and overloaded errors count against the account (backoff from the third in a row) and move on", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }, { id: "c" }] });
    env.fake.always("chatgpt-a", { kind: "http_error", status: 503, body: { error: { message: "busy" } } });
    env.fake.always("chatgpt-b", {
      kind: "sse_error",
      as: "response.failed",
      error: { code: "server_is_overloaded", message: "x" },
    });
    env.fake.always("chatgpt-c", { kind: "text", text: "c" });
    const res = await ask(env);
    expect(res.status).toBe(200);
    for (const id of ["a", "b"]) {
      const s = (await getSnapshot(env.db, id))!;
      expect(s.status).toBe("active");
      expect(s.failureStreak).toBe(1);
      expect(s.cooldownUntil ?? 0).toBeLessThanOrEqual(Date.now());
    }
    // Two more failures in a row on `a` put it in the 30 s backoff.
    env.fake.always("chatgpt-b", { kind: "text", text: "b" });
    await env.gw.running.gateway.services.apply([{ type: "account.pause", accountId: "b" }], {
      source: "test",
    });
    await env.gw.running.gateway.services.apply([{ type: "account.pause", accountId: "c" }], {
      source: "test",
    });
    for (let i = 0; i < 2; i++) await ask(env);
    const a = (await getSnapshot(env.db, "a"))!;
    expect(a.failureStreak).toBe(3);
    expect(a.cooldownUntil! - Date.now()).toBeGreaterThan(25_000);
    expect(a.cooldownUntil! - Date.now()).toBeLessThanOrEqual(30_000);
  });

  test("permanent auth codes deactivate the account (the auth-refresh table)", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
    env.fake.always("chatgpt-a", {
      kind: "http_error",
      status: 403,
      body: { error: { code: "account_deactivated", message: "gone" } },
    });
    env.fake.always("chatgpt-b", { kind: "text", text: "b" });
    expect((await ask(env)).status).toBe(200);
    const a = (await getSnapshot(env.db, "a"))!;
    expect(a.status).toBe("deactivated");
    expect(a.statusReason).toBe("Account has been deactivated");
  });

  test("a 401 is retried once on the same account after a forced token refresh", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }] });
    env.fake.script("chatgpt-a", {
      kind: "http_error",
      status: 401,
      body: { error: { message: "expired" } },
    });
    env.fake.always("chatgpt-a", { kind: "text", text: "after refresh" });
    const res = await ask(env);
    expect(res.status).toBe(200);
    expect(env.auth.state.refreshCalls).toBe(1);
    const auth = env.fake.requests.map((r) => r.headers.get("authorization"));
    expect(auth).toHaveLength(2);
    expect(auth[0]).toBe(`Bearer ${env.tokens.get("a")!.accessToken}`);
    // The retry carries the access token the forced refresh obtained.
    expect(auth[1]).not.toBe(auth[0]);
    expect(env.auth.state.issued).toContain(auth[1]!.slice("Bearer ".length));
  });

  test("a client error is shown as it is: no failover, no penalty", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
    const bad = {
      kind: "http_error" as const,
      status: 400,
      body: {
        error: {
          type: "invalid_request_error",
          code: "unsupported_model",
          message: "no such model",
          param: "model",
        },
      },
    };
    env.fake.always("chatgpt-a", bad);
    env.fake.always("chatgpt-b", bad);
    const res = await ask(env);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(error).toMatchObject({
      code: "unsupported_model",
      type: "invalid_request_error",
      message: "no such model",
    });
    expect(env.fake.requests.length).toBe(1);
    expect((await getSnapshot(env.db, "a"))!.status).toBe("active");
  });

  test("at most 3 accounts are tried; then the last upstream error is returned", async () => {
    env = await startProxyEnv({ accounts: ["a", "b", "c", "d"].map((id) => ({ id })) });
    for (const id of ["a", "b", "c", "d"]) {
      env.fake.always(`chatgpt-${id}`, {
        kind: "http_error",
        status: 500,
        body: { error: { message: `down ${id}` } },
      });
    }
    const res = await ask(env);
    expect(res.status).toBe(500);
    expect(env.fake.requests.length).toBe(3);
    expect([...env!.tokens.keys()].every((id) => env!.inFlight(id) === 0)).toBe(true);
  });

  test("a transport error (upstream unreachable) is a 502 upstream_unavailable after trying the accounts", async () => {
    env = await startProxyEnv({
      accounts: [{ id: "a" }],
      env: { CODEX_LB_UPSTREAM_BASE_URL: "http://127.0.0.1:9/backend-api" },
    });
    const res = await ask(env);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_unavailable");
    expect((await getSnapshot(env.db, "a"))!.failureStreak).toBe(1);
  });

  test("after the first byte an upstream failure reaches the client as it is", async () => {
    env = await startProxyEnv({ accounts: [{ id: "a" }, { id: "b" }] });
    env.fake.always("chatgpt-a", { kind: "truncated", text: "partial answer" });
    const res = await ask(env, "/backend-api/codex/responses");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("partial");
    expect(text).toContain("event: response.failed");
    expect(text).toContain("stream_incomplete");
    expect(env.fake.requests.length).toBe(1);
  });
});
