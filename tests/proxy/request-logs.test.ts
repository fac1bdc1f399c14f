import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { responseOwner } from "../../src/request-logs/owner.ts";
import { openMigratedStore, resolveStoreLocation } from "../../src/store/store.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

interface Page {
  items: Record<string, unknown>[];
  total: number;
  limit: number;
  offset: number;
}

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "l1" }, { id: "l2" }] });
  env.fake.always("chatgpt-l1", {
    kind: "text",
    text: "logged",
    usage: { input: 10, cached: 4, output: 6, reasoning: 2 },
  });
  const post = (path: string, body: Record<string, unknown>, ua: string) =>
    fetch(`${env.gw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": ua, "x-request-id": `log-${ua}` },
      body: JSON.stringify(body),
    }).then((r) => r.text());
  await post("/v1/responses", { model: "gpt-5.2", input: "a", reasoning: { effort: "high" } }, "ua-1");
  await post(
    "/v1/chat/completions",
    { model: "gpt-5.2-codex", messages: [{ role: "user", content: "b" }] },
    "ua-2",
  );
  env.fake.script("chatgpt-l1", {
    kind: "http_error",
    status: 400,
    body: { error: { code: "bad_thing", message: "nope" } },
  });
  await post("/backend-api/codex/responses", { model: "gpt-5.2", input: "c" }, "ua-3");
  await eventually(async () => (await env.db.selectFrom("request_logs").selectAll().execute()).length === 3);
});
afterAll(async () => {
  await env.stop();
});

const get = async (q = ""): Promise<Page> => {
  const res = await fetch(`${env.gw.url}/api/request-logs${q}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
};

describe("request logs", () => {
  test("one row per request with account, model, client, tokens, latency, ttfb and response id", async () => {
    const page = await get();
    expect(page.total).toBe(3);
    const ok = page.items.find((i) => i.requestId === "log-ua-1")!;
    expect(ok).toMatchObject({
      accountId: "l1",
      model: "gpt-5.2",
      endpoint: "/v1/responses",
      client: "ua-1",
      status: "success",
      httpStatus: 200,
      errorCode: null,
      inputTokens: 10,
      cachedInputTokens: 4,
      outputTokens: 6,
      reasoningTokens: 2,
      reasoningEffort: "high",
      apiKeyId: null,
    });
    expect(String(ok.responseId)).toMatch(/^resp_fake\d+$/);
    expect(ok.ttfbMs as number).toBeGreaterThanOrEqual(0);
    expect(ok.latencyMs as number).toBeGreaterThanOrEqual(ok.ttfbMs as number);
    // Epoch ms, like every time in the admin API.
    expect(ok.requestedAt as number).toBeGreaterThan(Date.now() - 60_000);
    expect(ok.requestedAt as number).toBeLessThanOrEqual(Date.now());
    const failed = page.items.find((i) => i.requestId === "log-ua-3")!;
    expect(failed).toMatchObject({
      status: "error",
      httpStatus: 400,
      errorCode: "bad_thing",
      errorMessage: "nope",
    });
  });

  test("the account that served a response id can be found (previous_response_id routing)", async () => {
    const ok = (await get()).items.find((i) => i.requestId === "log-ua-1")!;
    expect(await responseOwner(env.db, String(ok.responseId))).toBe("l1");
    expect(await responseOwner(env.db, "resp_unknown")).toBeNull();
  });

  test("filters by account, model, status and time; pages newest first", async () => {
    expect((await get("?model=gpt-5.2-codex")).items.map((i) => i.requestId)).toEqual(["log-ua-2"]);
    expect((await get("?status=error")).items.map((i) => i.requestId)).toEqual(["log-ua-3"]);
    expect((await get("?accountId=l2")).total).toBe(0);
    expect((await get("?accountId=l1")).total).toBe(3);
    expect((await get(`?since=${new Date(Date.now() + 60_000).toISOString()}`)).total).toBe(0);
    expect((await get(`?until=${Date.now() + 60_000}`)).total).toBe(3);
    const p1 = await get("?limit=2");
    const p2 = await get("?limit=2&offset=2");
    expect(p1.items.length).toBe(2);
    expect(p2.items.length).toBe(1);
    expect(p1.items[0]!.requestId).toBe("log-ua-3");
    expect(new Set([...p1.items, ...p2.items].map((i) => i.id)).size).toBe(3);
  });

  test("bad query values are 400s in the admin envelope", async () => {
    for (const q of ["?limit=0", "?status=weird", "?since=yesterday-ish"]) {
      const res = await fetch(`${env.gw.url}/api/request-logs${q}`);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("validation_error");
    }
  });

  test("the route is in the OpenAPI document", async () => {
    const doc = (await (await fetch(`${env.gw.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain("/api/request-logs");
  });
});

test("rows still buffered are written on a clean shutdown", async () => {
  // The writer would only flush in 10 minutes: only the stop hook can write these rows.
  const e = await startProxyEnv({
    accounts: [{ id: "s1" }],
    env: { CODEX_LB_REQUEST_LOG_FLUSH_MS: "600000" },
  });
  for (let i = 0; i < 5; i++) {
    await (
      await fetch(`${e.gw.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: `n${i}` }),
      })
    ).text();
  }
  expect((await e.db.selectFrom("request_logs").selectAll().execute()).length).toBe(0);
  const dir = e.gw.dataDir;
  await e.gw.running.shutdown();
  await e.upstream.stop();
  const store = await openMigratedStore(resolveStoreLocation("", dir));
  try {
    expect((await store.db.selectFrom("request_logs").selectAll().execute()).length).toBe(5);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
