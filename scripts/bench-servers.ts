/**
 * The servers of `bun run bench`, each run in its own process: the fake upstream, the bare
 * pass-through and codex-lb. Each prints `PORT <n>` once it listens on 127.0.0.1.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The fixed answer: ~40 events, the shape of a short Codex text answer. */
export function fixedAnswer(): string {
  const ev = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  const resp = { id: "resp_bench", object: "response", status: "in_progress", model: "gpt-5.2", output: [] };
  const parts = [
    ev({ type: "response.created", response: resp }),
    ev({ type: "response.in_progress", response: resp }),
  ];
  parts.push(
    ev({
      type: "response.output_item.added",
      output_index: 0,
      item: { id: "msg_1", type: "message", role: "assistant", content: [] },
    }),
  );
  for (let i = 0; i < 32; i++) {
    parts.push(
      ev({
        type: "response.output_text.delta",
        item_id: "msg_1",
        output_index: 0,
        content_index: 0,
        delta: `token${i} `,
      }),
    );
  }
  const usage = {
    input_tokens: 12,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 32,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 44,
  };
  parts.push(ev({ type: "response.completed", response: { ...resp, status: "completed", usage } }));
  return parts.join("");
}

/** The fake upstream: the fixed answer for every request. */
export async function serveUpstream(): Promise<void> {
  const body = new TextEncoder().encode(fixedAnswer());
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => new Response(body, { headers: { "content-type": "text/event-stream" } }),
  });
  console.log(`PORT ${server.port}`);
}

/** A minimal Bun `fetch` pass-through proxy: the practical limit for any proxy. */
export async function servePassthrough(upstream: string): Promise<void> {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
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

/** codex-lb with request logging on and its real built-in plugins, one account with a long-lived token. */
export async function serveGateway(upstream: string): Promise<void> {
  const { boot, prepare } = await import("../src/cli/boot.ts");
  const { createLogger } = await import("../src/app/logging.ts");
  const { mintTokens } = await import("../tests/fakes/jwt.ts");
  const pino = (await import("pino")).default;
  const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-bench-"));
  const env = {
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
  };
  const prepared = await prepare(env, dataDir);
  // Log lines are produced as in production, then discarded.
  const log = createLogger(
    process.env.BENCH_LOG_LEVEL ?? "info",
    pino.destination({ dest: "/dev/null", sync: false }),
  );
  const running = await boot(prepared, log);
  const now = Date.now();
  await running.store.db
    .insertInto("accounts")
    .values({
      id: "bench",
      chatgpt_account_id: "chatgpt-bench",
      email: "bench@example.test",
      plan_type: "pro",
      codex_installation_id: "00000000-0000-4000-8000-000000000000",
      created_at: now,
      updated_at: now,
    })
    .execute();
  const identity = {
    email: "bench@example.test",
    chatgptAccountId: "chatgpt-bench",
    chatgptUserId: "user-bench",
    planType: "pro",
  };
  const minted = mintTokens(identity, { expiresInSeconds: 86_400 });
  await running.gateway.accounts.saveTokens("bench", { ...minted, refreshToken: "bench-refresh-token" });
  const stop = async () => {
    await running.shutdown();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  console.log(`PORT ${running.listening.port}`);
}
