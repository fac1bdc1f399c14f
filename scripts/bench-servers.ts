/**
 * The servers of `bun run bench`, each run in its own process: the fake upstream, the bare
 * pass-through and codex-lb. Each prints `PORT <n>` (codex-lb also `KEY <api key>`) once it
 * listens on 127.0.0.1.
 *
 * The fake upstream picks its answer from a marker in the request body, so the pass-through and
 * codex-lb reach the same answers through their unchanged paths: {@link LONG_MARKER} → a
 * 1,000-event stream, {@link REAL_MARKER} → the short answer with events of a real backend's sizes
 * ({@link realAnswer}), {@link REASONING_MARKER} → a 1,000-event answer of a reasoning model
 * ({@link reasoningAnswer}: half of it summary deltas), {@link SLOW_MARKER} → a slow stream (one event per second for
 * `BENCH_SLOW_SECONDS`), anything else → the fixed short answer.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";

export const LONG_MARKER = "bench-long-stream";
export const SLOW_MARKER = "bench-slow-stream";
export const REAL_MARKER = "bench-real-stream";
export const REASONING_MARKER = "bench-reasoning-stream";

/** The bench's short request body (the fixed short answer). */
export const SHORT_BODY = JSON.stringify({
  model: "gpt-5.2",
  input: [{ role: "user", content: "benchmark" }],
});
let big: string | undefined;
/**
 * The bench's long Codex history: ~256 KB of earlier turns (128 turns of 2,000 characters). Built on
 * first use: the gateway processes the benchmarks measure load this module too (`serveGateway`),
 * and their memory should be a gateway's, not this body's.
 */
export function bigBody(): string {
  big ??= JSON.stringify({
    model: "gpt-5.2",
    instructions: "You are a coding agent.",
    input: Array.from({ length: 128 }, (_, i) => ({
      type: "message",
      role: i % 2 ? "assistant" : "user",
      content: [{ type: i % 2 ? "output_text" : "input_text", text: `turn ${i} ${"x".repeat(2000)}` }],
    })),
  });
  return big;
}

const ev = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const resp = { id: "resp_bench", object: "response", status: "in_progress", model: "gpt-5.2", output: [] };
const usage = {
  input_tokens: 12,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 32,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 44,
};
const delta = (i: number) =>
  ev({
    type: "response.output_text.delta",
    item_id: "msg_1",
    output_index: 0,
    content_index: 0,
    delta: `token${i} `,
  });
const head = () => [
  ev({ type: "response.created", response: resp }),
  ev({ type: "response.in_progress", response: resp }),
  ev({
    type: "response.output_item.added",
    output_index: 0,
    item: { id: "msg_1", type: "message", role: "assistant", content: [] },
  }),
];
const completed = () => ev({ type: "response.completed", response: { ...resp, status: "completed", usage } });

/** A Codex text answer of `deltas` text deltas (about `deltas + 4` events). */
export function answer(deltas: number): string {
  const parts = head();
  for (let i = 0; i < deltas; i++) parts.push(delta(i));
  parts.push(completed());
  return parts.join("");
}

/**
 * The fixed answer's 32 deltas with events of the sizes a real Codex backend sends: its
 * `response.created` and `response.in_progress` carry the whole Response object (the Codex
 * instructions, ~20 KB, and the tools' schemas), and `response.completed` the output too (an
 * encrypted reasoning item and the message): about 29, 29 and 33 KB here, where the fixed answer's
 * are a few hundred bytes. Made up, of the shapes and sizes of the backend's Response object.
 */
export function realAnswer(): string {
  const instructions = `You are Codex, a coding agent running in the Codex CLI.\n\n## General\n\n${"- Prefer `rg` to search; keep changes minimal and focused; explain what you did. ".repeat(240)}`;
  const tools = Array.from({ length: 10 }, (_, i) => ({
    type: "function",
    name: `tool_${i}`,
    description: "Runs a shell command and returns its output. ".repeat(8),
    strict: false,
    parameters: {
      type: "object",
      properties: {
        command: { type: "array", items: { type: "string" }, description: "The command to execute" },
        workdir: { type: "string", description: "The working directory to execute the command in" },
        timeout_ms: { type: "number", description: "The timeout for the command in milliseconds" },
      },
      required: ["command"],
      additionalProperties: false,
    },
  }));
  const full = {
    ...resp,
    created_at: 1764600000,
    background: false,
    error: null,
    incomplete_details: null,
    instructions,
    max_output_tokens: null,
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: "medium", summary: "auto" },
    store: false,
    text: { format: { type: "text" }, verbosity: "medium" },
    tool_choice: "auto",
    tools,
    truncation: "disabled",
    usage: null,
    metadata: {},
  };
  const message = { id: "msg_1", type: "message", role: "assistant", status: "completed" };
  const text = Array.from({ length: 32 }, (_, i) => `token${i} `).join("");
  const output = [
    { id: "rs_1", type: "reasoning", summary: [], encrypted_content: "gAAAAABo".repeat(500) },
    { ...message, content: [{ type: "output_text", text, annotations: [] }] },
  ];
  const parts = [
    ev({ type: "response.created", response: full }),
    ev({ type: "response.in_progress", response: full }),
    ev({
      type: "response.output_item.added",
      output_index: 0,
      item: { ...message, status: "in_progress", content: [] },
    }),
  ];
  for (let i = 0; i < 32; i++) parts.push(delta(i));
  parts.push(ev({ type: "response.output_item.done", output_index: 1, item: output[1] }));
  parts.push(ev({ type: "response.completed", response: { ...full, status: "completed", output, usage } }));
  return parts.join("");
}

/**
 * A reasoning model's answer of about 1,000 events, in the order the Responses API sends them: a
 * reasoning item with `summaryDeltas` summary deltas (its part and text opened and closed), then the
 * message with `textDeltas` text deltas, each item finished, and the end.
 */
export function reasoningAnswer(summaryDeltas = 500, textDeltas = 490): string {
  const parts = head().slice(0, 2);
  const rs = { id: "rs_1", type: "reasoning", summary: [] as unknown[] };
  const sum = { item_id: "rs_1", output_index: 0, summary_index: 0 };
  parts.push(ev({ type: "response.output_item.added", output_index: 0, item: rs }));
  parts.push(
    ev({ type: "response.reasoning_summary_part.added", ...sum, part: { type: "summary_text", text: "" } }),
  );
  const summary: string[] = [];
  for (let i = 0; i < summaryDeltas; i++) {
    summary.push(`thought${i} `);
    parts.push(ev({ type: "response.reasoning_summary_text.delta", ...sum, delta: `thought${i} ` }));
  }
  const text = summary.join("");
  parts.push(ev({ type: "response.reasoning_summary_text.done", ...sum, text }));
  parts.push(
    ev({ type: "response.reasoning_summary_part.done", ...sum, part: { type: "summary_text", text } }),
  );
  const rsDone = { ...rs, summary: [{ type: "summary_text", text }] };
  parts.push(ev({ type: "response.output_item.done", output_index: 0, item: rsDone }));
  const msg = { id: "msg_1", type: "message", role: "assistant", status: "in_progress", content: [] };
  parts.push(ev({ type: "response.output_item.added", output_index: 1, item: msg }));
  const at = { item_id: "msg_1", output_index: 1, content_index: 0 };
  parts.push(ev({ type: "response.content_part.added", ...at, part: { type: "output_text", text: "" } }));
  const out: string[] = [];
  for (let i = 0; i < textDeltas; i++) {
    out.push(`token${i} `);
    parts.push(ev({ type: "response.output_text.delta", ...at, delta: `token${i} ` }));
  }
  const answerText = out.join("");
  const part = { type: "output_text", text: answerText, annotations: [] };
  parts.push(ev({ type: "response.output_text.done", ...at, text: answerText }));
  parts.push(ev({ type: "response.content_part.done", ...at, part }));
  const msgDone = { ...msg, status: "completed", content: [part] };
  parts.push(ev({ type: "response.output_item.done", output_index: 1, item: msgDone }));
  parts.push(
    ev({
      type: "response.completed",
      response: { ...resp, status: "completed", output: [rsDone, msgDone], usage },
    }),
  );
  return parts.join("");
}

/** The fixed answer: ~36 events, the shape of a short Codex text answer. */
export function fixedAnswer(): string {
  return answer(32);
}

/** The fixed answer's events as WebSocket frames (one JSON event each). */
export function fixedAnswerFrames(): string[] {
  return fixedAnswer()
    .split("\n\n")
    .filter((b) => b !== "")
    .map((b) => b.slice(b.indexOf("data: ") + 6));
}

/**
 * The fake upstream: the answer the body's marker asks for; `/backend-api/codex/responses` also
 * speaks WebSocket (each `response.create` gets the fixed answer as frames).
 */
export async function serveUpstream(): Promise<void> {
  const enc = new TextEncoder();
  const short = enc.encode(fixedAnswer());
  const long = enc.encode(answer(996));
  const real = enc.encode(realAnswer());
  const reasoning = enc.encode(reasoningAnswer());
  const frames = fixedAnswerFrames();
  const slowSeconds = envNumber("BENCH_SLOW_SECONDS", 5);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    websocket: {
      idleTimeout: 0,
      message(ws) {
        for (const f of frames) ws.send(f);
      },
    },
    async fetch(req, srv) {
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket" && srv.upgrade(req)) return undefined;
      const text = await req.text();
      // An OTLP/HTTP sink for the gateway's trace export (`bun run bench -- --metrics`).
      if (req.url.endsWith("/v1/traces")) return Response.json({});
      const headers = { "content-type": "text/event-stream" };
      if (text.includes(LONG_MARKER)) return new Response(long, { headers });
      if (text.includes(REAL_MARKER)) return new Response(real, { headers });
      if (text.includes(REASONING_MARKER)) return new Response(reasoning, { headers });
      if (!text.includes(SLOW_MARKER)) return new Response(short, { headers });
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode(head().join("")));
        },
        async pull(c) {
          await Bun.sleep(1000);
          if (++i < slowSeconds) c.enqueue(enc.encode(delta(i)));
          else {
            c.enqueue(enc.encode(completed()));
            c.close();
          }
        },
      });
      return new Response(body, { headers });
    },
  });
  console.log(`PORT ${server.port}`);
}

/** A minimal Bun `fetch` pass-through proxy: the practical limit for any proxy. */
export async function servePassthrough(upstream: string): Promise<void> {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(req) {
      const res = await fetch(`${upstream}/backend-api/codex/responses`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: await req.text(),
      });
      return new Response(res.body, { status: res.status, headers: { "content-type": "text/event-stream" } });
    },
  });
  console.log(`PORT ${server.port}`);
}

/**
 * The settings of a bench gateway (only real `CODEX_LB_*` names: the compiled binary refuses
 * unknown ones), as environment variables for `codex-lb serve` or as `prepare`'s environment.
 */
export function gatewayEnv(upstream: string, dataDir: string): Record<string, string> {
  return {
    ...(process.env.BENCH_DATABASE_URL ? { CODEX_LB_DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
    CODEX_LB_DATA_DIR: dataDir,
    CODEX_LB_HOST: "127.0.0.1",
    CODEX_LB_PORT: "0",
    CODEX_LB_UPSTREAM_BASE_URL: `${upstream}/backend-api`,
    // No auth server in the bench: the token outlives the run, so nothing is refreshed.
    CODEX_LB_AUTH_BASE_URL: "http://127.0.0.1:9",
    CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
    CODEX_LB_OAUTH_CALLBACK_PORT: "0",
    CODEX_LB_LOG_LEVEL: "info",
    // `CODEX_LB_METRICS_ENABLED=false bun run bench` measures the gateway without its metrics.
    CODEX_LB_METRICS_ENABLED: process.env.CODEX_LB_METRICS_ENABLED ?? "true",
    // Trace export (off unless the bench turns it on for a gateway of the --metrics run).
    ...(process.env.CODEX_LB_OTEL_TRACES_ENDPOINT
      ? { CODEX_LB_OTEL_TRACES_ENDPOINT: process.env.CODEX_LB_OTEL_TRACES_ENDPOINT }
      : {}),
    CODEX_LB_API_KEY_AUTH_ENABLED: "true",
    // Every bench client comes from 127.0.0.1: lift the per-address cap on requests still sending their body.
    CODEX_LB_MAX_UNAUTHENTICATED_PER_ADDRESS: "100000",
    // Same for connections still sending their first headers (the memory run opens thousands at once).
    CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS: "100000",
    ...(process.env.BENCH_MAX_STREAMS ? { CODEX_LB_ACCOUNT_MAX_STREAMS: process.env.BENCH_MAX_STREAMS } : {}),
  };
}

/**
 * codex-lb with its real built-in plugins, request logging, API-key auth on and a key with a
 * (never reached) daily token limit; `accounts` accounts with long-lived tokens.
 *
 * `seedDir`: seeds that data directory (accounts, key), prints `KEY`, stops and exits without
 * serving, for a compiled `codex-lb serve` started on it with {@link gatewayEnv} (the bench's
 * binary row).
 */
export async function serveGateway(upstream: string, accounts: number, seedDir?: string): Promise<void> {
  const { boot, prepare } = await import("../src/cli/boot.ts");
  const { createLogger, lineDestination } = await import("../src/core/logging.ts");
  const { createApiKey } = await import("../src/access/api-keys/repository.ts");
  const { mintTokens } = await import("../tests/fakes/jwt.ts");
  const dataDir = seedDir ?? mkdtempSync(join(tmpdir(), "codex-lb-bench-"));
  // Replicas on one PostgreSQL database (`bun run bench --postgres`) share the database and the key.
  if (process.env.BENCH_KEY)
    writeFileSync(join(dataDir, "encryption.key"), `${process.env.BENCH_KEY}\n`, { mode: 0o600 });
  const env = gatewayEnv(upstream, dataDir);
  const prepared = await prepare(env, dataDir);
  // Log lines are produced and written as in production (the same destination as stdout's), then discarded.
  const log = createLogger(process.env.BENCH_LOG_LEVEL ?? "info", lineDestination("/dev/null"));
  // Start-up's compiled code is dropped once the accounts and the key are seeded below (not by
  // `boot`, before them): a user's gateway, seeded beforehand, has done its start-up work then too.
  const running = await boot(prepared, log, { shedStartupCode: false });
  const stop = async () => {
    await running.shutdown();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  // A replica joining a database the first one seeded.
  if (accounts === 0) {
    const { shedStartupCode } = await import("../src/runtime/bun/startup-memory.ts");
    shedStartupCode();
    console.log(`PORT ${running.listening.port}`);
    return;
  }
  const now = Date.now();
  for (let i = 0; i < accounts; i++) {
    const id = `bench${i}`;
    await running.store.db
      .insertInto("accounts")
      .values({
        id,
        chatgpt_account_id: `chatgpt-${id}`,
        email: `${id}@example.test`,
        plan_type: "pro",
        codex_installation_id: "00000000-0000-4000-8000-000000000000",
        created_at: now,
        updated_at: now,
      })
      .execute();
    const identity = {
      email: `${id}@example.test`,
      chatgptAccountId: `chatgpt-${id}`,
      chatgptUserId: `user-${id}`,
      planType: "pro",
    };
    const minted = mintTokens(identity, { expiresInSeconds: 86_400 });
    await running.gateway.accounts.saveTokens(id, { ...minted, refreshToken: `bench-refresh-${id}` });
  }
  const { key } = await createApiKey(
    running.store.db,
    {
      name: "bench",
      // BENCH_KEY_LIMIT=0: a key without limits (to tell the limit's cost from the key check's).
      limits:
        process.env.BENCH_KEY_LIMIT === "0"
          ? []
          : [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1e15 }],
    },
    now,
  );
  console.log(`KEY ${key}`);
  if (seedDir) {
    await running.shutdown();
    process.exit(0);
  }
  const { shedStartupCode } = await import("../src/runtime/bun/startup-memory.ts");
  shedStartupCode();
  console.log(`PORT ${running.listening.port}`);
}
