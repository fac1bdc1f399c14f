/**
 * OpenTelemetry trace export against a collector that speaks OTLP/HTTP JSON on 127.0.0.1: one span
 * per proxied request (an SDK request joining the client's W3C trace, a compaction, a WebSocket
 * turn) with the access line's facts; batched spans are flushed at shutdown. Off by default.
 */
import { describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { parseOtelHeaders } from "../../src/tracing/tracing.ts";
import { startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

type Json = Record<string, unknown>;
interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes: { key: string; value: OtlpValue }[];
  events?: { name: string }[];
  status?: { code?: number };
}

/** A minimal OTLP/HTTP collector: keeps the JSON bodies POSTed to /v1/traces. */
function collector() {
  const bodies: Json[] = [];
  const contentTypes: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/v1/traces")
        return new Response("no", { status: 404 });
      contentTypes.push(req.headers.get("content-type") ?? "");
      bodies.push({ auth: req.headers.get("x-collector-auth"), ...((await req.json()) as Json) });
      return Response.json({});
    },
  });
  const spans = () => {
    const out: (OtlpSpan & { resource: Record<string, unknown> })[] = [];
    for (const b of bodies)
      for (const rs of (b.resourceSpans ?? []) as {
        resource: { attributes: { key: string; value: OtlpValue }[] };
        scopeSpans: { spans: OtlpSpan[] }[];
      }[]) {
        const resource = Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue]));
        for (const ss of rs.scopeSpans) for (const s of ss.spans) out.push({ ...s, resource });
      }
    return out;
  };
  return {
    url: `http://127.0.0.1:${server.port}/v1/traces`,
    bodies,
    contentTypes,
    spans,
    stop: () => server.stop(true),
  };
}

const attrs = (s: OtlpSpan) =>
  Object.fromEntries(
    s.attributes.map((a) => [
      a.key,
      a.value.stringValue ?? (a.value.intValue !== undefined ? Number(a.value.intValue) : a.value.boolValue),
    ]),
  );

describe("OpenTelemetry trace export", () => {
  test("one span per proxied request with the access line's facts, in the client's trace, flushed at shutdown", async () => {
    const otlp = collector();
    const env = await startProxyEnv({
      accounts: [{ id: "o1", chatgptAccountId: "chatgpt-o1" }],
      env: {
        CODEX_LB_OTEL_TRACES_ENDPOINT: otlp.url,
        CODEX_LB_OTEL_HEADERS: "x-collector-auth=Bearer%20abc",
      },
    });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentSpanId = "00f067aa0ba902b7";
    try {
      env.fake.script("chatgpt-o1", { kind: "text", text: "traced", usage: { input: 7, output: 3 } });
      const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-unused", maxRetries: 0 });
      await client.responses.create(
        { model: "gpt-5.2", input: "hi" },
        { headers: { traceparent: `00-${traceId}-${parentSpanId}-01` } },
      );
      // A compaction and a WebSocket turn are spans too.
      env.fake.script("chatgpt-o1", { kind: "compaction", encryptedContent: "item" });
      const compacted = await fetch(`${env.gw.url}/v1/responses/compact`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-5.2",
          input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "hello" }] }],
        }),
      });
      expect(compacted.status).toBe(200);
      env.fake.script("chatgpt-o1", { kind: "text", text: "over the socket" });
      const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
      const frames = await ws.turn({
        type: "response.create",
        model: "gpt-5.2",
        instructions: "be brief",
        input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "one" }] }],
      });
      expect(frames.at(-1)!.type).toBe("response.completed");
      ws.close();
      await ws.closed;
      // An upstream error the client sees as a 4xx: a span without the error status.
      env.fake.script("chatgpt-o1", { kind: "http_error", status: 400, body: { error: { code: "bad" } } });
      await client.responses.create({ model: "gpt-5.2", input: "x" }).catch(() => null);
    } finally {
      // Shutdown exports what the batch still holds.
      await env.stop();
    }
    const spans = otlp.spans();
    otlp.stop();
    expect(otlp.contentTypes.every((c) => c.startsWith("application/json"))).toBe(true);
    expect(otlp.bodies.every((b) => b.auth === "Bearer abc")).toBe(true);
    const byName = (name: string) => spans.filter((s) => s.name === name);

    const [sdk, failed] = byName("POST /v1/responses");
    expect(sdk!.traceId).toBe(traceId);
    expect(sdk!.parentSpanId).toBe(parentSpanId);
    expect(sdk!.kind).toBe(2); // SERVER
    expect(sdk!.resource["service.name"]).toBe("codex-lb");
    const a = attrs(sdk!);
    expect(a).toMatchObject({
      "http.request.method": "POST",
      "url.path": "/v1/responses",
      "http.response.status_code": 200,
      "gen_ai.request.model": "gpt-5.2",
      "codex_lb.endpoint": "responses",
      "codex_lb.outcome": "success",
      "codex_lb.account.id": "o1",
      "codex_lb.attempts": 1,
      "codex_lb.transport": "http",
      "gen_ai.usage.input_tokens": 7,
      "gen_ai.usage.output_tokens": 3,
    });
    expect(typeof a["codex_lb.request_id"]).toBe("string");
    expect(a["codex_lb.ttfb_ms"]).toBeGreaterThanOrEqual(0);
    expect(sdk!.events?.map((e) => e.name)).toEqual(["first_event"]);
    expect(BigInt(sdk!.endTimeUnixNano) >= BigInt(sdk!.startTimeUnixNano)).toBe(true);
    expect(sdk!.status?.code ?? 0).toBe(0);

    // Without a traceparent a request starts its own trace.
    expect(failed!.traceId).not.toBe(traceId);
    expect(failed!.parentSpanId ?? "").toBe("");
    expect(attrs(failed!)).toMatchObject({ "http.response.status_code": 400, "error.type": "bad" });
    expect(failed!.status?.code ?? 0).toBe(0);

    const [compact] = byName("POST /v1/responses/compact");
    expect(attrs(compact!)).toMatchObject({ "codex_lb.endpoint": "compact", "codex_lb.account.id": "o1" });
    const [turn] = byName("WS /backend-api/codex/responses");
    expect(attrs(turn!)).toMatchObject({
      "codex_lb.endpoint": "codex",
      "codex_lb.transport": "websocket",
      "http.response.status_code": 200,
    });
    // No request id, token or prompt text beyond the fixed attribute set.
    const keys = new Set(spans.flatMap((s) => s.attributes.map((x) => x.key)));
    for (const k of keys) expect(k).toMatch(/^(http\.|url\.|gen_ai\.|codex_lb\.|error\.type$)/);
  });

  test("CODEX_LB_OTEL_SAMPLE_RATIO=0: only requests whose client sent a sampled traceparent are traced", async () => {
    const otlp = collector();
    const env = await startProxyEnv({
      accounts: [{ id: "s1", chatgptAccountId: "chatgpt-s1" }],
      env: { CODEX_LB_OTEL_TRACES_ENDPOINT: otlp.url, CODEX_LB_OTEL_SAMPLE_RATIO: "0" },
    });
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    try {
      const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-unused", maxRetries: 0 });
      for (const traceparent of [
        null,
        `00-${traceId}-b7ad6b7169203331-01`,
        `00-${"1".repeat(32)}-b7ad6b7169203331-00`,
      ]) {
        env.fake.script("chatgpt-s1", { kind: "text", text: "sampled?" });
        await client.responses.create(
          { model: "gpt-5.2", input: "hi" },
          traceparent ? { headers: { traceparent } } : {},
        );
      }
    } finally {
      await env.stop();
    }
    const spans = otlp.spans();
    otlp.stop();
    expect(spans.map((s) => [s.name, s.traceId])).toEqual([["POST /v1/responses", traceId]]);
  });

  test("off by default: no span leaves, and a malformed CODEX_LB_OTEL_HEADERS stops start-up naming it", async () => {
    const otlp = collector();
    const env = await startProxyEnv({ accounts: [{ id: "n1", chatgptAccountId: "chatgpt-n1" }] });
    try {
      expect(env.gw.running.gateway.tracing).toBeNull();
      env.fake.script("chatgpt-n1", { kind: "text", text: "untraced" });
      const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-unused", maxRetries: 0 });
      const r = await client.responses.create({ model: "gpt-5.2", input: "hi" });
      expect(r.output_text).toBe("untraced");
    } finally {
      await env.stop();
    }
    expect(otlp.bodies).toHaveLength(0);
    otlp.stop();

    const bad = await startProxyEnv({
      env: {
        CODEX_LB_OTEL_TRACES_ENDPOINT: "http://127.0.0.1:9/v1/traces",
        CODEX_LB_OTEL_HEADERS: "novalue",
      },
    }).catch((e: Error) => e);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toContain("CODEX_LB_OTEL_HEADERS");
  });

  test("CODEX_LB_OTEL_HEADERS: every name=value pair is a header, whatever its name", () => {
    const h = parseOtelHeaders("x-a=1, __proto__=p%2Cq,constructor=c,x-a=2");
    expect(Object.keys(h)).toEqual(["x-a", "__proto__", "constructor"]);
    expect(Object.entries(h)).toEqual([
      ["x-a", "2"],
      ["__proto__", "p,q"],
      ["constructor", "c"],
    ]);
    expect(Object.getPrototypeOf(h)).toBe(Object.prototype);
  });
});

describe("CODEX_LB_OTEL_HEADERS on the wire", () => {
  test("a header named __proto__ reaches the collector with the others", async () => {
    const { OtelTracer } = await import("../../src/tracing/otel.ts");
    const { createLogger } = await import("../../src/core/logging.ts");
    const received: Record<string, string>[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        received.push(Object.fromEntries([...req.headers].filter(([k]) => k !== "content-length")));
        return Response.json({});
      },
    });
    try {
      const tracer = new OtelTracer({
        url: `http://127.0.0.1:${server.port}/v1/traces`,
        headers: parseOtelHeaders("x-a=1,__proto__=p%2Cq,constructor=c"),
        version: "test",
        log: createLogger("silent"),
      });
      tracer.requestDone({
        requestId: "req_1",
        method: "POST",
        path: "/v1/responses",
        endpoint: "responses",
        model: "gpt-5.2",
        accountId: null,
        apiKeyId: null,
        httpStatus: 200,
        outcome: "success",
        errorCode: null,
        attempts: 1,
        startedAt: Date.now() - 5,
        durationMs: 5,
        ttfbMs: null,
        inputTokens: null,
        cachedInputTokens: null,
        outputTokens: null,
        reasoningTokens: null,
        transport: "http",
        traceparent: null,
        tracestate: null,
      });
      await tracer.shutdown();
      expect(received).toHaveLength(1);
      const sent = Object.entries(received[0]!).filter(([k]) =>
        ["x-a", "__proto__", "constructor"].includes(k),
      );
      expect(sent.sort()).toEqual([
        ["__proto__", "p,q"],
        ["constructor", "c"],
        ["x-a", "1"],
      ]);
    } finally {
      server.stop(true);
    }
  });
});
