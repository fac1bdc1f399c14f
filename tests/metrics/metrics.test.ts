import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import parsePrometheusTextFormat, { type Family } from "parse-prometheus-text-format";
import { BoundedValues, Counter, MAX_SERIES } from "../../src/metrics/registry.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

let env: ProxyEnv;
let client: OpenAI;
const scrape = async (headers: Record<string, string> = {}) => {
  const res = await fetch(`${env.gw.url}/metrics`, { headers });
  const text = res.status === 200 ? await res.text() : "";
  return { res, text, families: text ? parsePrometheusTextFormat(text) : [] };
};
const family = (fs: Family[], name: string) => {
  const f = fs.find((x) => x.name === name);
  if (!f) throw new Error(`no metric ${name}`);
  return f;
};

beforeAll(async () => {
  env = await startProxyEnv({
    accounts: [
      { id: "m1", chatgptAccountId: "chatgpt-m1" },
      { id: "m2", chatgptAccountId: "chatgpt-m2", status: "paused" },
    ],
    env: { CODEX_LB_METRICS_TOKEN: "scrape-secret-123" },
  });
  client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-unused", maxRetries: 0 });
});
afterAll(async () => {
  await env.stop();
});

describe("/metrics after SDK traffic", () => {
  test("request, token, latency, account and hook series with bounded labels, parsed as Prometheus text", async () => {
    env.fake.script("chatgpt-m1", { kind: "text", text: "one", usage: { input: 11, output: 5, cached: 3 } });
    await client.responses.create({ model: "gpt-5.2", input: "hi" });
    env.fake.script("chatgpt-m1", { kind: "text", text: "two", usage: { input: 2, output: 1 } });
    const stream = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    for await (const _ of stream) {
      // drain
    }
    await env.fake.script("chatgpt-m1", {
      kind: "http_error",
      status: 400,
      body: { error: { code: "bad" } },
    });
    await client.responses.create({ model: "gpt-5.2", input: "x" }).catch(() => null);

    const scraped = await eventually(async () => {
      const s = await scrape({ authorization: "Bearer scrape-secret-123" });
      const reqs = s.families.find((f) => f.name === "codex_lb_requests_total");
      const n = (reqs?.metrics ?? []).reduce((a, m) => a + Number(m.value), 0);
      return n >= 3 ? s : null;
    });
    const { res, families, text } = scraped!;
    expect(res!.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const requests = family(families, "codex_lb_requests_total");
    expect(requests.type).toBe("COUNTER");
    const labels = requests.metrics.map((m) => m.labels);
    expect(labels).toContainEqual({
      endpoint: "responses",
      status: "200",
      model: "gpt-5.2",
      account: "m1",
      api_key: "none",
    });
    expect(labels).toContainEqual({
      endpoint: "chat",
      status: "200",
      model: "gpt-5.2",
      account: "m1",
      api_key: "none",
    });
    expect(labels).toContainEqual({
      endpoint: "responses",
      status: "400",
      model: "gpt-5.2",
      account: "m1",
      api_key: "none",
    });
    // No request id, no free text anywhere in a label.
    for (const f of families)
      for (const m of f.metrics)
        for (const v of Object.values(m.labels ?? {})) {
          expect(v).toMatch(/^[A-Za-z0-9._:/@+-]{1,80}$|^\+Inf$/);
        }

    const tokens = family(families, "codex_lb_tokens_total").metrics;
    const tok = (kind: string) =>
      Number(tokens.find((m) => m.labels?.kind === kind && m.labels?.account === "m1")?.value ?? 0);
    expect(tok("input")).toBe(13);
    expect(tok("cached_input")).toBe(3);
    expect(tok("output")).toBe(6);

    // Histograms (the parser flattens labelled histograms, so their lines are read as text).
    expect(family(families, "codex_lb_request_duration_seconds").type).toBe("HISTOGRAM");
    expect(text).toContain('codex_lb_request_duration_seconds_count{endpoint="responses"} 2\n');
    expect(text).toContain('codex_lb_request_duration_seconds_bucket{endpoint="responses",le="+Inf"} 2\n');
    expect(text).toMatch(/^codex_lb_time_to_first_token_seconds_count\{endpoint="chat"\} 1$/m);
    expect(text).toMatch(/^codex_lb_queue_wait_seconds_count\{outcome="acquired"\} [1-9]/m);

    const status = family(families, "codex_lb_account_status").metrics;
    const is = (account: string, s: string) =>
      status.find((m) => m.labels?.account === account && m.labels?.status === s)?.value;
    expect(is("m1", "active")).toBe("1");
    expect(is("m2", "paused")).toBe("1");
    expect(is("m2", "active")).toBe("0");
    const usable = family(families, "codex_lb_account_usable").metrics;
    expect(usable.find((m) => m.labels?.account === "m2")?.value).toBe("0");
    const quota = family(families, "codex_lb_account_quota_used_percent").metrics;
    expect(quota.find((m) => m.labels?.account === "m1" && m.labels?.window === "primary")?.value).toBe(
      "12.5",
    );
    expect(
      family(families, "codex_lb_in_flight_streams").metrics.find((m) => m.labels?.account === "m1")?.value,
    ).toBe("0");
    expect(family(families, "codex_lb_request_log_queue_depth").metrics[0]!.value).toBeDefined();
    expect(family(families, "codex_lb_request_log_dropped_rows").metrics[0]!.value).toBe("0");
    // The balancing plugin's choice shows up as route.account actions of account.select.
    expect(
      family(families, "codex_lb_hook_actions_total").metrics.some(
        (m) => m.labels?.hook === "account.select" && m.labels?.type === "route.account",
      ),
    ).toBe(true);
    for (const name of [
      "codex_lb_failovers_total",
      "codex_lb_token_refreshes_total",
      "codex_lb_cost_usd_total",
      "codex_lb_actions_applied_total",
    ])
      expect(families.some((f) => f.name === name)).toBe(true);
  });

  test("a failover is counted by phase", async () => {
    await env.seed({ id: "m3", chatgptAccountId: "chatgpt-m3" });
    env.fake.script("chatgpt-m1", {
      kind: "http_error",
      status: 500,
      body: { error: { code: "server_error" } },
    });
    env.fake.script("chatgpt-m3", { kind: "text", text: "rescued" });
    await client.responses.create({ model: "gpt-5.2", input: "hi" });
    const { families } = await scrape();
    const f = family(families, "codex_lb_failovers_total").metrics;
    expect(Number(f.find((m) => m.labels?.phase === "http")?.value)).toBeGreaterThanOrEqual(1);
  });

  test("a compaction and a WebSocket turn are counted too (endpoint compact, codex)", async () => {
    env.fake.script("chatgpt-m1", { kind: "compaction", encryptedContent: "item" });
    const compacted = await fetch(`${env.gw.url}/backend-api/codex/responses/compact`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-5.2",
        input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "hello" }] }],
      }),
    });
    expect(compacted.status).toBe(200);
    env.fake.script("chatgpt-m1", { kind: "text", text: "socket", usage: { input: 4, output: 2 } });
    const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
    const frames = await ws.turn({
      type: "response.create",
      model: "gpt-5.2",
      instructions: "be brief",
      input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "one" }] }],
    });
    expect(frames.at(-1)!.type).toBe("response.completed");
    ws.close();
    const requests = await eventually(async () => {
      const fs = (await scrape()).families;
      const labels = family(fs, "codex_lb_requests_total").metrics.map((m) => m.labels?.endpoint);
      return labels.includes("compact") && labels.includes("codex") ? fs : null;
    });
    const series = family(requests!, "codex_lb_requests_total").metrics;
    for (const endpoint of ["compact", "codex"])
      expect(series.find((m) => m.labels?.endpoint === endpoint)?.labels).toEqual({
        endpoint,
        status: "200",
        model: "gpt-5.2",
        account: "m1",
        api_key: "none",
      });
    const { text } = await scrape();
    expect(text).toMatch(/^codex_lb_request_duration_seconds_count\{endpoint="codex"\} [1-9]/m);
    expect(text).toMatch(/^codex_lb_request_duration_seconds_count\{endpoint="compact"\} [1-9]/m);
  });
});

describe("/metrics access", () => {
  test("the token or admin access; anything else is 401 with a Bearer challenge", async () => {
    // No admin password set: a local caller has admin access.
    expect((await scrape()).res.status).toBe(200);
    await fetch(`${env.gw.url}/api/auth/password`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ newPassword: "metrics-admin-pw" }),
    });
    const anon = await scrape();
    expect(anon.res.status).toBe(401);
    expect(anon.res.headers.get("www-authenticate")).toContain("Bearer");
    expect(((await anon.res.json()) as { error: { code: string } }).error.code).toBe(
      "authentication_required",
    );
    expect((await scrape({ authorization: "Bearer wrong" })).res.status).toBe(401);
    expect((await scrape({ authorization: "Bearer scrape-secret-123" })).res.status).toBe(200);
  });
});

describe("registry bounds", () => {
  test("a metric keeps at most MAX_SERIES series, the rest is counted as other", () => {
    const c = new Counter("t_total", "t", ["a"]);
    for (let i = 0; i < MAX_SERIES + 50; i++) c.inc([`v${i}`]);
    expect(c.value(["other"])).toBe(50);
    const out: string[] = [];
    c.render(out);
    expect(out.length).toBe(2 + MAX_SERIES + 1);
  });
  test("model names: the first 100 distinct, well-formed names, then other", () => {
    const b = new BoundedValues(2);
    expect([b.of("a"), b.of("b"), b.of("c"), b.of("a"), b.of("x y"), b.of(null)]).toEqual([
      "a",
      "b",
      "other",
      "a",
      "other",
      "none",
    ]);
  });
});
