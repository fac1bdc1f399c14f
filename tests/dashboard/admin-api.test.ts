/**
 * The admin endpoints the dashboard stands on, in-process (no browser): the live event stream, the
 * overview and usage aggregates over seeded request-log rows, the new request-log filters and cost,
 * admin sessions, and how the UI files are served (CSP, caching, offline Swagger UI).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { costUsd } from "../../src/access/api-keys/pricing.ts";
import { FakeClock } from "../../src/core/clock.ts";
import { AdminEvents, COALESCE_MS, MAX_STREAMS } from "../../src/dashboard/events.ts";
import type { NewRequestLogRow } from "../../src/store/schema.ts";
import { seedAccount } from "../support/accounts.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.stop();
});

const db = () => gw.running.store.db;
const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

function row(over: Partial<NewRequestLogRow>): NewRequestLogRow {
  return {
    requested_at: Date.now(),
    request_id: crypto.randomUUID(),
    account_id: null,
    api_key_id: null,
    model: "gpt-5.2",
    endpoint: "/v1/responses",
    client: null,
    client_ip: "127.0.0.1",
    status: "success",
    http_status: 200,
    error_code: null,
    error_message: null,
    input_tokens: 100,
    cached_input_tokens: 0,
    output_tokens: 50,
    reasoning_tokens: 0,
    cost_usd: null,
    latency_ms: 1000,
    ttfb_ms: 200,
    response_id: null,
    session_key: null,
    reasoning_effort: null,
    ...over,
  };
}

/** Reads SSE events from a response until `n` named events arrived (or `ms`). */
async function readEvents(res: Response, n: number, ms = 3_000): Promise<{ event: string; data: unknown }[]> {
  const reader = res.body!.getReader();
  const out: { event: string; data: unknown }[] = [];
  let buf = "";
  const deadline = Date.now() + ms;
  while (out.length < n && Date.now() < deadline) {
    const chunk = await Promise.race([
      reader.read(),
      Bun.sleep(Math.max(1, deadline - Date.now())).then(() => null),
    ]);
    if (!chunk || chunk.done) break;
    buf += new TextDecoder().decode(chunk.value);
    let end = buf.indexOf("\n\n");
    while (end >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const event = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (event) out.push({ event, data: data ? JSON.parse(data) : null });
      end = buf.indexOf("\n\n");
    }
  }
  await reader.cancel();
  return out;
}

describe("GET /api/events", () => {
  test("opens with hello, then names what changed: settings, and request-log rows by request id", async () => {
    const ctl = new AbortController();
    const res = await fetch(`${gw.url}/api/events`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    // hello, settings, audit (the settings change is audited), requests.
    const events = readEvents(res, 4);
    await Bun.sleep(50);
    expect((await fetch(`${gw.url}/api/settings`, json("PUT", { stickyTtlSeconds: 600 }))).status).toBe(200);
    gw.running.gateway.requestLogs.add(row({ request_id: "evt-req-1" }));
    const got = await events;
    ctl.abort();
    expect(got[0]).toEqual({
      event: "hello",
      data: { topics: ["requests", "accounts", "settings", "api-keys", "firewall", "audit"] },
    });
    const names = got.map((e) => e.event);
    expect(names).toContain("settings");
    expect(names).toContain("requests");
    expect(got.find((e) => e.event === "requests")?.data).toEqual({ count: 1, requestIds: ["evt-req-1"] });
  });

  test("is on the admin surface: a remote caller without a session gets 401", async () => {
    const res = await gw.running.gateway.fetch(new Request("http://127.0.0.1/api/events"), "203.0.113.7");
    expect(res.status).toBe(401);
  });

  test("a burst on one topic is one event; the stream cap holds; close ends every stream", async () => {
    const clock = new FakeClock(1_000);
    const hub = new AdminEvents(clock);
    const seen: unknown[] = [];
    let closed = 0;
    hub.subscribe(
      (e) => seen.push(e),
      () => closed++,
    );
    for (let i = 0; i < 100; i++) hub.publish("requests", [`r${i}`]);
    hub.publish("accounts");
    expect(seen).toEqual([]);
    await clock.advance(COALESCE_MS);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ topic: "requests", data: { count: 100 } });
    expect((seen[0] as { data: { requestIds: string[] } }).data.requestIds).toHaveLength(50);
    expect(seen[1]).toEqual({ topic: "accounts", data: { count: 1 } });
    for (let i = 1; i < MAX_STREAMS; i++)
      expect(
        hub.subscribe(
          () => {},
          () => closed++,
        ),
      ).not.toBeNull();
    expect(
      hub.subscribe(
        () => {},
        () => {},
      ),
    ).toBeNull();
    hub.close();
    expect(closed).toBe(MAX_STREAMS);
    expect(hub.size).toBe(0);
  });
});

test("shutdown ends open event streams instead of waiting out the grace period", async () => {
  const own = await startGateway({ env: { CODEX_LB_SHUTDOWN_GRACE_SECONDS: "20" } });
  const res = await fetch(`${own.url}/api/events`);
  const events = readEvents(res, 5, 10_000);
  await Bun.sleep(50);
  const t0 = Date.now();
  await own.stop();
  expect(Date.now() - t0).toBeLessThan(5_000);
  expect((await events).map((e) => e.event)).toEqual(["hello"]);
});

describe("GET /api/overview and GET /api/usage/report", () => {
  const now = Date.now();
  beforeAll(async () => {
    await seedAccount(db(), { id: "ov-a", email: "a@example.test" });
    await seedAccount(db(), { id: "ov-b", status: "paused" });
    await db()
      .insertInto("api_keys")
      .values({
        id: "key-1",
        name: "ci",
        key_hash: "h",
        key_prefix: "sk-clb-xxxxxxxx",
        expires_at: null,
        allowed_models: null,
        created_at: now,
        updated_at: now,
        last_used_at: null,
      })
      .execute();
    await db()
      .insertInto("request_logs")
      .values([
        row({ requested_at: now - 30_000, account_id: "ov-a", api_key_id: "key-1", request_id: "ov-1" }),
        row({
          requested_at: now - 20_000,
          account_id: "ov-a",
          status: "error",
          http_status: 502,
          output_tokens: 0,
        }),
        row({ requested_at: now - 10 * 60_000, account_id: "ov-b", cost_usd: 0.5, model: "gpt-5.4" }),
        row({ requested_at: now - 3 * DAY, account_id: "ov-a", input_tokens: 1000, output_tokens: 500 }),
        // Outside 28 days: not counted.
        row({ requested_at: now - 40 * DAY, account_id: "ov-a" }),
      ])
      .execute();
  });

  test("overview: accounts by status, traffic per minute, error rate, today's tokens and cost", async () => {
    const since = now - HOUR;
    const res = await fetch(`${gw.url}/api/overview?since=${since}`);
    expect(res.status).toBe(200);
    const o = (await res.json()) as {
      accounts: { total: number; usable: number; byStatus: Record<string, number> };
      traffic: {
        requestsLastHour: number;
        errorsLastHour: number;
        errorRateLastHour: number;
        perMinute: number[];
      };
      today: {
        since: number;
        requests: number;
        errors: number;
        inputTokens: number;
        outputTokens: number;
        costUsd: number;
      };
    };
    expect(o.accounts.byStatus).toMatchObject({ active: 1, paused: 1 });
    expect(o.accounts.usable).toBeGreaterThanOrEqual(1);
    expect(o.traffic.perMinute).toHaveLength(60);
    // The three seeded rows of the last hour (other tests' rows may add to these counts).
    expect(o.traffic.requestsLastHour).toBeGreaterThanOrEqual(3);
    expect(o.traffic.errorsLastHour).toBeGreaterThanOrEqual(1);
    expect(o.traffic.errorRateLastHour).toBeCloseTo(o.traffic.errorsLastHour / o.traffic.requestsLastHour, 6);
    expect(o.today.since).toBe(since);
    const priced = costUsd("gpt-5.2", { inputTokens: 100, cachedInputTokens: 0, outputTokens: 50 })!;
    const mine = await db()
      .selectFrom("request_logs")
      .selectAll()
      .where("requested_at", ">=", since)
      .execute();
    const expected = mine.reduce(
      (sum, r) =>
        sum +
        (r.cost_usd ??
          costUsd(r.model, {
            inputTokens: r.input_tokens ?? 0,
            cachedInputTokens: r.cached_input_tokens ?? 0,
            outputTokens: r.output_tokens ?? 0,
          }) ??
          0),
      0,
    );
    expect(o.today.requests).toBe(mine.length);
    expect(o.today.costUsd).toBeCloseTo(expected, 9);
    expect(o.today.costUsd).toBeGreaterThanOrEqual(0.5 + priced);
  });

  test("usage report: 28 days, breakdowns by model, account and key, latency percentiles", async () => {
    const res = await fetch(`${gw.url}/api/usage/report?days=28&tzOffsetMinutes=0`);
    expect(res.status).toBe(200);
    const r = (await res.json()) as {
      days: { day: string; requests: number; inputTokens: number }[];
      byModel: { model: string | null; requests: number; costUsd: number }[];
      byAccount: { accountId: string | null; email: string | null; requests: number }[];
      byApiKey: { apiKeyId: string | null; name: string | null; requests: number }[];
      latency: {
        samples: number;
        ttfbMs: { p50: number | null };
        outputTokensPerSecond: { p50: number | null };
      };
    };
    expect(r.days).toHaveLength(28);
    expect(r.days[27]!.day).toBe(new Date(now).toISOString().slice(0, 10));
    const threeDaysAgo = new Date(now - 3 * DAY).toISOString().slice(0, 10);
    expect(r.days.find((d) => d.day === threeDaysAgo)?.inputTokens).toBeGreaterThanOrEqual(1000);
    expect(r.byModel.find((m) => m.model === "gpt-5.4")).toMatchObject({ requests: 1, costUsd: 0.5 });
    expect(r.byAccount.find((a) => a.accountId === "ov-a")).toMatchObject({
      email: "a@example.test",
      requests: 3,
    });
    expect(r.byApiKey.find((k) => k.apiKeyId === "key-1")).toMatchObject({ name: "ci", requests: 1 });
    expect(r.latency.samples).toBeGreaterThanOrEqual(3);
    expect(r.latency.ttfbMs.p50).toBe(200);
    // 50 output tokens over 800 ms of generation.
    expect(r.latency.outputTokensPerSecond.p50).toBeCloseTo(62.5, 6);
  });

  test("bad parameters are 4xx JSON errors", async () => {
    for (const q of ["/api/usage/report?days=0", "/api/usage/report?days=abc", "/api/overview?since=-5"]) {
      const res = await fetch(`${gw.url}${q}`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBeString();
    }
  });

  test("request logs: filter by request id, API key and endpoint; items carry their cost", async () => {
    const one = (await (await fetch(`${gw.url}/api/request-logs?requestId=ov-1`)).json()) as {
      items: { requestId: string; costUsd: number | null }[];
      total: number;
    };
    expect(one.total).toBe(1);
    expect(one.items[0]!.costUsd).toBeCloseTo(
      costUsd("gpt-5.2", { inputTokens: 100, cachedInputTokens: 0, outputTokens: 50 })!,
      12,
    );
    const byKey = (await (await fetch(`${gw.url}/api/request-logs?apiKeyId=key-1`)).json()) as {
      total: number;
    };
    expect(byKey.total).toBe(1);
    const byEndpoint = (await (
      await fetch(`${gw.url}/api/request-logs?endpoint=/v1/chat/completions`)
    ).json()) as {
      total: number;
    };
    expect(byEndpoint.total).toBe(0);
  });
});

describe("admin sessions", () => {
  test("lists sessions (never a token) and logs out everywhere", async () => {
    const own = await startGateway();
    try {
      const set = await fetch(
        `${own.url}/api/auth/password`,
        json("POST", { newPassword: "sessions passphrase" }),
      );
      const cookie = set.headers.get("set-cookie")!.split(";")[0]!;
      const login = await fetch(
        `${own.url}/api/auth/login`,
        json("POST", { password: "sessions passphrase" }),
      );
      const other = login.headers.get("set-cookie")!.split(";")[0]!;
      const listed = await fetch(`${own.url}/api/auth/sessions`, { headers: { cookie } });
      const body = (await listed.json()) as { sessions: { current: boolean; clientIp: string }[] };
      expect(body.sessions).toHaveLength(2);
      expect(body.sessions.filter((s) => s.current)).toHaveLength(1);
      expect(JSON.stringify(body)).not.toContain(cookie.split("=")[1]!);
      const out = await fetch(`${own.url}/api/auth/sessions/revoke-all`, {
        method: "POST",
        headers: { cookie },
      });
      expect(out.status).toBe(200);
      for (const c of [cookie, other])
        expect((await fetch(`${own.url}/api/accounts`, { headers: { cookie: c } })).status).toBe(401);
    } finally {
      await own.stop();
    }
  });
});

describe("UI files", () => {
  test("the dashboard page and its hashed assets, same-origin CSP, long cache for assets, 304", async () => {
    for (const path of ["/", "/dashboard", "/dashboard/requests"]) {
      const res = await fetch(`${gw.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith("text/html");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      const html = await res.text();
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
    const html = await (await fetch(`${gw.url}/`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith(".js"))).toBe(true);
    expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
    for (const a of assets) {
      const res = await fetch(`${gw.url}${a}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toContain("immutable");
      const again = await fetch(`${gw.url}${a}`, { headers: { "if-none-match": res.headers.get("etag")! } });
      expect(again.status).toBe(304);
    }
    const missing = await fetch(`${gw.url}/dashboard/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  test("Swagger UI at /docs loads only from this origin", async () => {
    const res = await fetch(`${gw.url}/docs`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("/docs/assets/swagger-ui-bundle.js");
    expect(html).not.toMatch(/https?:\/\//);
    const bundle = await fetch(`${gw.url}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000);
    expect((await fetch(`${gw.url}/docs/assets/swagger-ui.css`)).status).toBe(200);
    expect(await (await fetch(`${gw.url}/docs/assets/docs.css`)).text()).toContain(".opblock-summary-method");
    expect(await (await fetch(`${gw.url}/docs/assets/init.js`)).text()).toContain('url: "/docs/json"');
    const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    for (const p of ["/api/events", "/api/overview", "/api/usage/report", "/api/auth/sessions"])
      expect(Object.keys(doc.paths)).toContain(p);
  });
});
