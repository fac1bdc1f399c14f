import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import OpenAI from "openai";
import { getSnapshot } from "../../src/accounts/snapshots.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
let client: OpenAI;

beforeAll(async () => {
  env = await startProxyEnv({
    accounts: [{ id: "ops1", chatgptAccountId: "chatgpt-ops1", email: "Ops1@Example.test" }],
    env: { CODEX_LB_LOG_LEVEL: "debug" },
  });
  client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-test-unused", maxRetries: 0 });
});
afterAll(async () => {
  await env.stop();
});

describe("what an operator sees", () => {
  test("one access line per proxied request with account, key, model, status, timings and tokens", async () => {
    env.fake.script("chatgpt-ops1", {
      kind: "text",
      text: "hello",
      usage: { input: 7, output: 4, cached: 1 },
    });
    const r = await client.responses.create({ model: "gpt-5.2", input: "hi" });
    expect(r.output_text).toBe("hello");
    const line = await eventually(() =>
      env.gw.logs().find((l) => l.msg === "request" && l.path === "/v1/responses"),
    );
    expect(line).toBeDefined();
    const hash = createHash("sha256").update("ops1@example.test").digest("hex").slice(0, 12);
    expect(line).toMatchObject({
      level: "info",
      method: "POST",
      endpoint: "responses",
      model: "gpt-5.2",
      accountId: "ops1",
      account: hash,
      apiKeyId: null,
      status: 200,
      outcome: "success",
      inputTokens: 7,
      cachedInputTokens: 1,
      outputTokens: 4,
    });
    expect(typeof line!.requestId).toBe("string");
    expect(line!.ttfbMs).toBeGreaterThanOrEqual(0);
    expect(line!.ms as number).toBeGreaterThanOrEqual(line!.ttfbMs as number);
    // The email itself never appears in the access line, and the request is logged once.
    expect(JSON.stringify(line)).not.toContain("Example.test");
    expect(env.gw.logs().filter((l) => l.requestId === line!.requestId && l.msg === "request")).toHaveLength(
      1,
    );
    // At debug, the routing decision in one line.
    const decision = env.gw
      .logs()
      .find((l) => l.msg === "routing decision" && l.requestId === line!.requestId);
    expect(decision).toMatchObject({ accountId: "ops1", sticky: false, candidates: ["ops1"], excluded: [] });
    expect(String(decision!.reason)).toContain("fill_first");
  });

  test("a live reading without a reset time keeps the reset time last seen (resetAt stays set)", async () => {
    await env.seed({ id: "ops2", chatgptAccountId: "chatgpt-ops2" });
    const resetAt = Date.now() + 3 * 3600_000;
    await env.gw.running.gateway.accounts.recordUsage("ops2", {
      primary: { usedPercent: 10, windowMinutes: 300, resetAt },
      secondary: null,
      credits: null,
    });
    env.fake.always("chatgpt-ops1", {
      kind: "http_error",
      status: 500,
      body: { error: { code: "server_error" } },
    });
    await fetch(`${env.gw.url}/api/accounts/ops1/pause`, { method: "POST" });
    await client.responses.create({ model: "gpt-5.2", input: "hi" });
    // The fake sends x-codex-primary-used-percent 12.5 and window-minutes 300, no reset-at.
    const snap = await eventually(async () => {
      const s = await getSnapshot(env.db, "ops2");
      return s?.primary?.usedPercent === 12.5 ? s : null;
    });
    expect(snap?.primary?.usedPercent).toBe(12.5);
    expect(snap?.primary?.resetAt).not.toBeNull();
    expect(snap!.primary!.resetAt!).toBeGreaterThan(Date.now());
  });
});

describe("502 bodies name no internal account", () => {
  test("an account whose credentials cannot be had: the body says so without its id", async () => {
    const other = await startProxyEnv({ accounts: [{ id: "secret-internal-id", withoutTokens: true }] });
    try {
      const res = await fetch(`${other.gw.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
      });
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(text).not.toContain("secret-internal-id");
      expect(JSON.parse(text).error).toMatchObject({ code: "upstream_unavailable" });
      // The operator still finds the account in the log.
      expect(
        other.gw
          .logs()
          .some((l) => l.msg === "account credentials unavailable" && l.accountId === "secret-internal-id"),
      ).toBe(true);
    } finally {
      await other.stop();
    }
  });
});
