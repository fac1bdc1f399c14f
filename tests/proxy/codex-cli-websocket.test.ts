/**
 * The real Codex CLI (node_modules/.bin/codex) with the recommended codex-lb configuration
 * (`name = "openai"`, `supports_websockets = true`) against the gateway: it opens the Responses
 * WebSocket, no WebSocket failure shows on its stderr, and the request-log rows say
 * `transport=websocket`. A turn with a tool call sends two requests on one socket; the second
 * continues the first with `previous_response_id` and reaches the same upstream socket. Every other
 * address the CLI might try is sent to a dead local proxy, so nothing leaves 127.0.0.1.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
let home: string;
let work: string;
const ACC = "chatgpt-ws1";

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "ws1", chatgptAccountId: ACC }] });
  home = mkdtempSync(join(tmpdir(), "codex-home-"));
  work = mkdtempSync(join(tmpdir(), "codex-work-"));
  writeFileSync(
    join(home, "config.toml"),
    [
      `model = "gpt-5.2"`,
      `model_provider = "codex-lb"`,
      `check_for_update_on_startup = false`,
      `[model_providers.codex-lb]`,
      `name = "openai"`,
      `base_url = "${env.gw.url}/backend-api/codex"`,
      `wire_api = "responses"`,
      `supports_websockets = true`,
      `env_key = "CODEX_LB_TEST_KEY"`,
      `requires_openai_auth = false`,
      `request_max_retries = 0`,
      `stream_max_retries = 0`,
    ].join("\n"),
  );
});
afterAll(async () => {
  await env.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

async function codexExec(
  prompt: string,
  extra: string[] = [],
): Promise<{ code: number; out: string; err: string }> {
  const args = ["node_modules/.bin/codex", "exec", ...extra, "--skip-git-repo-check", "--cd", work, prompt];
  const proc = Bun.spawn(args, {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      CODEX_HOME: home,
      CODEX_LB_TEST_KEY: "dummy-not-a-real-key",
      HTTP_PROXY: "http://127.0.0.1:9",
      HTTPS_PROXY: "http://127.0.0.1:9",
      ALL_PROXY: "http://127.0.0.1:9",
      NO_PROXY: "127.0.0.1,localhost",
      RUST_LOG: "error",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill(), 45_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(killer);
  const code = await proc.exited;
  if (code !== 0) console.error(err.slice(-3000));
  return { code, out, err };
}

const rowsSince = (t: number) =>
  env.db.selectFrom("request_logs").selectAll().where("requested_at", ">=", t).orderBy("id").execute();

test("codex exec over the Responses WebSocket: no WebSocket failure, rows say transport=websocket", async () => {
  env.fake.always(ACC, { kind: "text", text: "PONG over the socket" });
  const t0 = Date.now();
  const before = env.fake.requests.length;
  const { code, out, err } = await codexExec("Reply with PONG.");
  expect(code).toBe(0);
  expect(out).toContain("PONG over the socket");
  expect(err.toLowerCase()).not.toContain("websocket");
  expect(err).not.toContain("falling back");
  const upstream = env.fake.requests.slice(before);
  expect(upstream.length).toBeGreaterThan(0);
  for (const r of upstream) expect(r.transport).toBe("websocket");
  // The first connection of the CLI is the gateway's WebSocket (not an HTTP POST).
  expect(env.upstream.calls("POST /backend-api/codex/responses").length).toBe(0);
  const rows = await eventually(async () => {
    const r = await rowsSince(t0);
    return r.length >= upstream.length ? r : null;
  });
  expect(rows!.length).toBeGreaterThan(0);
  for (const r of rows!) {
    expect(r).toMatchObject({
      transport: "websocket",
      upstream_transport: "websocket",
      status: "success",
      account_id: "ws1",
      endpoint: "/backend-api/codex/responses",
    });
    expect(r.client).toStartWith("codex_exec/");
  }
});

test("a turn with a tool call: two requests on one socket, the second continues the first on the same upstream socket", async () => {
  env.fake.script(ACC, {
    kind: "tool_call",
    name: "exec_command",
    arguments: JSON.stringify({ cmd: "echo tool-ran" }),
    callId: "call_ws_tool",
  });
  env.fake.always(ACC, { kind: "text", text: "DONE after the tool" });
  const t0 = Date.now();
  const before = env.fake.requests.length;
  const { code, out, err } = await codexExec("Run echo tool-ran, then say DONE.");
  expect(code).toBe(0);
  expect(out).toContain("DONE after the tool");
  expect(err.toLowerCase()).not.toContain("websocket");
  const upstream = env.fake.requests.slice(before).filter((r) => r.body.generate !== false);
  expect(upstream.length).toBe(2);
  const [first, second] = upstream as [(typeof upstream)[0], (typeof upstream)[0]];
  expect(second.connection).toBe(first.connection);
  const outputItem = (second.body.input as Json[]).find((i) => i.type === "function_call_output");
  expect(outputItem?.call_id).toBe("call_ws_tool");
  // The CLI continued its own previous response on the same socket; the upstream accepted it there.
  expect(typeof second.body.previous_response_id).toBe("string");
  const rows = await eventually(async () => {
    const r = (await rowsSince(t0)).filter((x) => x.status === "success");
    return r.length >= 2 ? r : null;
  });
  for (const r of rows!) expect(r).toMatchObject({ transport: "websocket", upstream_transport: "websocket" });
});

test("a session that outgrows its compaction limit compacts through the gateway and goes on", async () => {
  // The tool call reports 50,000 input tokens; with a 1,000-token limit the CLI compacts before
  // sending the tool output, then finishes the turn.
  env.fake.script(ACC, {
    kind: "tool_call",
    name: "exec_command",
    arguments: JSON.stringify({ cmd: "echo big" }),
    callId: "call_big",
    usage: { input: 50_000, output: 100 },
  });
  env.fake.always(ACC, { kind: "text", text: "DONE after compaction", usage: { input: 10, output: 10 } });
  const t0 = Date.now();
  const before = env.fake.requests.length;
  const { code, out, err } = await codexExec("Run echo big, then say DONE.", [
    "-c",
    "model_auto_compact_token_limit=1000",
  ]);
  expect(code).toBe(0);
  expect(out + err).toContain("context compacted");
  expect(out).toContain("DONE after compaction");
  expect(err.toLowerCase()).not.toContain("websocket");
  const upstream = env.fake.requests.slice(before);
  expect(upstream.length).toBeGreaterThanOrEqual(3);
  for (const r of upstream) expect(r.transport).toBe("websocket");
  const rows = await eventually(async () => {
    const r = await rowsSince(t0);
    return r.length >= upstream.length ? r : null;
  });
  for (const r of rows!) expect(r).toMatchObject({ status: "success", http_status: 200 });
});

type Json = Record<string, unknown>;
