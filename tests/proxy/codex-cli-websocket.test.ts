/**
 * The real Codex CLI (node_modules/.bin/codex) with the recommended codex-lb configuration
 * (`name = "OpenAI"`, `supports_websockets = true`) against the gateway: it opens the Responses
 * WebSocket, no WebSocket failure shows on its stderr, and the request-log rows say
 * `transport=websocket`. A turn with a tool call sends two requests on one socket; the second
 * continues the first with `previous_response_id` and reaches the same upstream socket. A session
 * past its compaction limit compacts remotely through the gateway (the CLI's in-band
 * `compaction_trigger` turn, logged as `kind=compact`), over the WebSocket and over HTTP. Every other
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
      `name = "OpenAI"`,
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
const compactRowsSince = async (t: number) =>
  (await rowsSince(t)).filter((r) => r.endpoint.endsWith("/responses/compact")).length;

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

test("remote compaction through the gateway: the CLI's compaction turn reaches the session's upstream socket and its item comes back unchanged", async () => {
  // The tool call reports 50,000 input tokens; with a 1,000-token limit the CLI compacts before
  // sending the tool output. This CLI compacts remotely in-band (remote compaction v2): a
  // `response.create` whose last input item is `compaction_trigger`, on the same socket; the next
  // turn carries the compaction item instead of the history.
  const SECRET = "opaque-account-bound-compaction-Zq9";
  env.fake.script(
    ACC,
    {
      kind: "tool_call",
      name: "exec_command",
      arguments: JSON.stringify({ cmd: "echo big" }),
      callId: "call_big",
      usage: { input: 50_000, output: 100 },
    },
    { kind: "compaction", encryptedContent: SECRET, usage: { input: 900, output: 50 } },
  );
  env.fake.always(ACC, { kind: "text", text: "DONE after compaction", usage: { input: 10, output: 10 } });
  const t0 = Date.now();
  const before = env.fake.requests.length;
  const gatewayCompactCalls = await compactRowsSince(t0);
  const { code, out, err } = await codexExec("Run echo big, then say DONE.", [
    "-c",
    "model_auto_compact_token_limit=1000",
  ]);
  expect(code).toBe(0);
  expect(out).toContain("DONE after compaction");
  expect(err.toLowerCase()).not.toContain("websocket");
  const upstream = env.fake.requests.slice(before).filter((r) => r.body.generate !== false);
  const lastType = (r: (typeof upstream)[0]) => (r.body.input as Json[]).at(-1)?.type;
  const compactions = upstream.filter((r) => lastType(r) === "compaction_trigger");
  expect(compactions.length).toBe(1);
  const c = compactions[0]!;
  const i = upstream.indexOf(c);
  const toolTurn = upstream[i - 1]!;
  const next = upstream[i + 1]!;
  // The compaction went to the session's owner, on the upstream socket that holds its history.
  expect(c.transport).toBe("websocket");
  expect(c.chatgptAccountId).toBe(ACC);
  expect(c.connection).toBe(toolTurn.connection!);
  expect(env.fake.connections[c.connection!]!.headers.get("authorization")).toBe(
    `Bearer ${env.tokens.get("ws1")!.accessToken}`,
  );
  expect(c.body.previous_response_id).toBeString();
  expect((c.body.input as Json[]).filter((x) => x.type === "compaction_trigger").length).toBe(1);
  // The next turn is built on the compaction item, passed through byte for byte.
  const carried = (next.body.input as Json[]).filter((x) => x.type === "compaction");
  expect(carried.length).toBe(1);
  expect(carried[0]!.encrypted_content).toBe(SECRET);
  expect(next.body.input as Json[]).not.toContainEqual(expect.objectContaining({ type: "function_call" }));
  // The request log has the compaction turn as its own row, marked `compact`.
  const rows = await eventually(async () => {
    const r = await rowsSince(t0);
    return r.length >= upstream.length ? r : null;
  });
  const compactRows = rows!.filter((r) => r.kind === "compact");
  expect(compactRows.length).toBe(1);
  expect(compactRows[0]).toMatchObject({
    endpoint: "/backend-api/codex/responses",
    transport: "websocket",
    upstream_transport: "websocket",
    account_id: "ws1",
    status: "success",
    input_tokens: 900,
    output_tokens: 50,
  });
  for (const r of rows!.filter((x) => x.kind !== "compact")) expect(r.kind).toBe("response");
  // …and /api/request-logs can list compactions alone.
  const page = (await (await fetch(`${env.gw.url}/api/request-logs?kind=compact&since=${t0}`)).json()) as {
    items: { requestId: string; kind: string }[];
  };
  expect(page.items.map((x) => x.requestId)).toEqual([compactRows[0]!.request_id]);
  // This CLI compacts in-band: it never calls the dedicated endpoint (kept for older clients).
  expect(await compactRowsSince(t0)).toEqual(gatewayCompactCalls);
});

test("remote compaction over HTTP (supports_websockets = false): the trigger turn carries the whole history, the next turn the item", async () => {
  const SECRET = "opaque-http-compaction-Kx2";
  env.fake.script(
    ACC,
    {
      kind: "tool_call",
      name: "exec_command",
      arguments: JSON.stringify({ cmd: "echo big" }),
      callId: "call_big_http",
      usage: { input: 50_000, output: 100 },
    },
    { kind: "compaction", encryptedContent: SECRET, usage: { input: 800, output: 40 } },
  );
  env.fake.always(ACC, { kind: "text", text: "DONE over http", usage: { input: 10, output: 10 } });
  const t0 = Date.now();
  const before = env.fake.requests.length;
  const { code, out } = await codexExec("Run echo big, then say DONE.", [
    "-c",
    "model_auto_compact_token_limit=1000",
    "-c",
    "model_providers.codex-lb.supports_websockets=false",
  ]);
  expect(code).toBe(0);
  expect(out).toContain("DONE over http");
  const upstream = env.fake.requests.slice(before);
  for (const r of upstream) expect(r.transport).toBe("http");
  const i = upstream.findIndex((r) => (r.body.input as Json[]).at(-1)?.type === "compaction_trigger");
  expect(i).toBeGreaterThan(0);
  const c = upstream[i]!;
  expect(c.chatgptAccountId).toBe(ACC);
  expect(c.body.previous_response_id).toBeUndefined();
  expect((c.body.input as Json[]).map((x) => x.type)).toContain("function_call_output");
  const carried = (upstream[i + 1]!.body.input as Json[]).filter((x) => x.type === "compaction");
  expect(carried.map((x) => x.encrypted_content)).toEqual([SECRET]);
  const rows = await eventually(async () => {
    const r = await rowsSince(t0);
    return r.length >= upstream.length ? r : null;
  });
  const compactRows = rows!.filter((r) => r.kind === "compact");
  expect(compactRows.length).toBe(1);
  expect(compactRows[0]).toMatchObject({
    endpoint: "/backend-api/codex/responses",
    transport: "http",
    upstream_transport: "http",
    account_id: "ws1",
    status: "success",
  });
});

test('with `name = "openai"` (lower case) the CLI does not compact remotely: it summarises locally, still through the gateway', async () => {
  env.fake.script(ACC, {
    kind: "tool_call",
    name: "exec_command",
    arguments: JSON.stringify({ cmd: "echo big" }),
    callId: "call_big_local",
    usage: { input: 50_000, output: 100 },
  });
  env.fake.always(ACC, {
    kind: "text",
    text: "DONE after a local summary",
    usage: { input: 10, output: 10 },
  });
  const before = env.fake.requests.length;
  const t0 = Date.now();
  const { code, out } = await codexExec("Run echo big, then say DONE.", [
    "-c",
    "model_auto_compact_token_limit=1000",
    "-c",
    'model_providers.codex-lb.name="openai"',
  ]);
  expect(code).toBe(0);
  expect(out).toContain("DONE after a local summary");
  const upstream = env.fake.requests.slice(before).filter((r) => r.body.generate !== false);
  expect(upstream.length).toBeGreaterThanOrEqual(3);
  for (const r of upstream) {
    expect(r.transport).toBe("websocket");
    expect((r.body.input as Json[]).map((x) => x.type)).not.toContain("compaction_trigger");
  }
  const rows = await eventually(async () => {
    const r = await rowsSince(t0);
    return r.length >= upstream.length ? r : null;
  });
  for (const r of rows!) expect(r).toMatchObject({ kind: "response", status: "success" });
});

type Json = Record<string, unknown>;
