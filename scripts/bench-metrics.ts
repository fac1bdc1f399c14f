/**
 * `bun run scripts/bench-metrics.ts`: what codex-lb's metrics cost per proxied request, measured
 * on the work one request does (one `request()` call: a request counter, two histograms, three
 * token counters and a cost counter; one queue-wait observation; two hook-action counters), with
 * the Bun-native registry of `src/metrics/` and, when `prom-client` can be imported (it is not a
 * dependency: `PROM_CLIENT=/path/to/node_modules/prom-client`), the same series in prom-client.
 * Prints nanoseconds per request and the share of one request's CPU time at the throughput given
 * by `BENCH_RPS` (default 4000 req/s, codex-lb's single-process rate in `bun run bench`).
 * Then the optional OpenTelemetry trace export (`CODEX_LB_OTEL_TRACES_ENDPOINT`): one span per
 * request recorded and exported (batched, OTLP/HTTP JSON) to a sink in this process, in rounds of
 * 512 spans each flushed before the next, so the export's serialising and sending are counted.
 *
 * @module
 */
import pino from "pino";
import { GatewayMetrics } from "../src/metrics/metrics.ts";
import { OtelTracer } from "../src/tracing/otel.ts";
import { envNumber } from "./bench-env.ts";

const N = envNumber("BENCH_N", 1_000_000);
const RPS = envNumber("BENCH_RPS", 4000);
const accounts = Array.from({ length: 20 }, (_, i) => `acct-${i}`);
const keys = ["key-a", "key-b", "key-c", null];
const models = ["gpt-5.2", "gpt-5.2-codex", "gpt-5.1"];

function native(): () => void {
  const m = new GatewayMetrics({
    accounts: async () => [],
    inFlight: () => 0,
    queued: () => 0,
    requestLogQueue: () => 0,
    requestLogDropped: () => 0,
    now: () => 0,
  });
  let i = 0;
  const actions = [{ type: "route.account" }, { type: "sticky.touch" }];
  return () => {
    i++;
    m.request({
      endpoint: "responses",
      status: 200,
      model: models[i % 3]!,
      accountId: accounts[i % 20]!,
      apiKeyId: keys[i % 4]!,
      durationMs: 800 + (i % 500),
      ttfbMs: 200 + (i % 100),
      inputTokens: 1200,
      cachedInputTokens: 300,
      outputTokens: 400,
      reasoningTokens: 0,
      costUsd: 0.004,
    });
    m.queueWait.observe(["acquired"], 0.0001);
    m.actions("account.select", actions);
  };
}

async function promClient(path: string): Promise<() => void> {
  // biome-ignore lint/suspicious/noExplicitAny: prom-client is not a dependency; loaded by path.
  const pc = (await import(path)) as any;
  const r = new pc.Registry();
  const requests = new pc.Counter({
    name: "r_total",
    help: "h",
    labelNames: ["endpoint", "status", "model", "account", "api_key"],
    registers: [r],
  });
  const duration = new pc.Histogram({
    name: "d_seconds",
    help: "h",
    labelNames: ["endpoint"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [r],
  });
  const ttft = new pc.Histogram({
    name: "t_seconds",
    help: "h",
    labelNames: ["endpoint"],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [r],
  });
  const tokens = new pc.Counter({
    name: "tok_total",
    help: "h",
    labelNames: ["kind", "model", "account"],
    registers: [r],
  });
  const cost = new pc.Counter({
    name: "c_total",
    help: "h",
    labelNames: ["model", "api_key"],
    registers: [r],
  });
  const wait = new pc.Histogram({
    name: "w_seconds",
    help: "h",
    labelNames: ["outcome"],
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [r],
  });
  const hooks = new pc.Counter({ name: "h_total", help: "h", labelNames: ["hook", "type"], registers: [r] });
  let i = 0;
  return () => {
    i++;
    const model = models[i % 3]!;
    const account = accounts[i % 20]!;
    const key = keys[i % 4] ?? "none";
    requests.inc({ endpoint: "responses", status: "200", model, account, api_key: key });
    duration.observe({ endpoint: "responses" }, (800 + (i % 500)) / 1000);
    ttft.observe({ endpoint: "responses" }, (200 + (i % 100)) / 1000);
    tokens.inc({ kind: "input", model, account }, 1200);
    tokens.inc({ kind: "cached_input", model, account }, 300);
    tokens.inc({ kind: "output", model, account }, 400);
    cost.inc({ model, api_key: key }, 0.004);
    wait.observe({ outcome: "acquired" }, 0.0001);
    hooks.inc({ hook: "account.select", type: "route.account" });
    hooks.inc({ hook: "account.select", type: "sticky.touch" });
  };
}

function measure(name: string, fn: () => void): number {
  for (let i = 0; i < 50_000; i++) fn(); // warm up
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N / 5; i++) fn();
    runs.push(((performance.now() - t0) * 1e6) / (N / 5));
  }
  runs.sort((a, b) => a - b);
  const median = runs[2]!;
  const budgetNs = 1e9 / RPS;
  console.log(
    `${name.padEnd(12)} ${median.toFixed(0).padStart(6)} ns/request (runs ${runs.map((x) => x.toFixed(0)).join(", ")}); ` +
      `${((median / budgetNs) * 100).toFixed(3)}% of a request's time at ${RPS} req/s`,
  );
  return median;
}

const a = measure("bun-native", native());
const path = process.env.PROM_CLIENT;
if (path) {
  const b = measure("prom-client", await promClient(path));
  console.log(`prom-client / bun-native: ${(b / a).toFixed(1)}x`);
} else console.log("prom-client: not measured (set PROM_CLIENT to a prom-client module path)");

/** The trace export's cost per request: record + export (to a sink in this process), in ns. */
async function traces(): Promise<void> {
  const sink = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({}) });
  const tracer = new OtelTracer({
    url: `http://127.0.0.1:${sink.port}/v1/traces`,
    headers: {},
    version: "bench",
    log: pino({ level: "silent" }),
  });
  let i = 0;
  const one = () => {
    i++;
    tracer.requestDone({
      requestId: `req-${i}`,
      method: "POST",
      path: "/v1/responses",
      endpoint: "responses",
      model: models[i % 3]!,
      accountId: accounts[i % 20]!,
      apiKeyId: keys[i % 4]!,
      httpStatus: 200,
      outcome: "success",
      errorCode: null,
      attempts: 1,
      startedAt: 1_764_547_200_000 + i,
      durationMs: 800,
      ttfbMs: 200,
      inputTokens: 1200,
      cachedInputTokens: 300,
      outputTokens: 400,
      reasoningTokens: 0,
      transport: "http",
      traceparent: i % 2 ? "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" : null,
      tracestate: null,
    });
  };
  const round = async (n: number) => {
    for (let k = 0; k < n; k++) one();
    await tracer.forceFlush();
  };
  for (let w = 0; w < 20; w++) await round(512); // warm up
  const runs: number[] = [];
  const per = Math.max(512, Math.floor(N / 50));
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let done = 0; done < per; done += 512) await round(512);
    runs.push(((performance.now() - t0) * 1e6) / per);
  }
  await tracer.shutdown();
  sink.stop(true);
  runs.sort((x, y) => x - y);
  const median = runs[2]!;
  console.log(
    `${"otlp traces".padEnd(12)} ${median.toFixed(0).padStart(6)} ns/request (runs ${runs.map((x) => x.toFixed(0)).join(", ")}); ` +
      `${((median / (1e9 / RPS)) * 100).toFixed(3)}% of a request's time at ${RPS} req/s (record + export + the sink's own work)`,
  );
}
await traces();
