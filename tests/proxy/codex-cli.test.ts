/**
 * The real Codex CLI (node_modules/.bin/codex) against the gateway: a custom model provider with
 * `wire_api = "responses"` pointing at /backend-api/codex, a dummy key from `env_key`, no OpenAI
 * login. Every other address the CLI might try (plugin sync, update checks) is sent to a dead
 * local proxy, so nothing leaves 127.0.0.1.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
let home: string;
let work: string;

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "cli1", chatgptAccountId: "chatgpt-cli1" }] });
  home = mkdtempSync(join(tmpdir(), "codex-home-"));
  work = mkdtempSync(join(tmpdir(), "codex-work-"));
  writeFileSync(
    join(home, "config.toml"),
    [
      `model = "gpt-5.2"`,
      `model_provider = "codexlb"`,
      `check_for_update_on_startup = false`,
      `[model_providers.codexlb]`,
      `name = "codex-lb"`,
      `base_url = "${env.gw.url}/backend-api/codex"`,
      `wire_api = "responses"`,
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

test("codex exec gets the fake backend's answer through the gateway", async () => {
  env.fake.always("chatgpt-cli1", { kind: "text", text: "PONG from the fake backend" });
  const proc = Bun.spawn(
    ["node_modules/.bin/codex", "exec", "--skip-git-repo-check", "--cd", work, "Reply with PONG."],
    {
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
    },
  );
  const killer = setTimeout(() => proc.kill(), 45_000);
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(killer);
  const code = await proc.exited;
  if (code !== 0) console.error(err.slice(-2000));
  expect(code).toBe(0);
  expect(out).toContain("PONG from the fake backend");

  const req = env.fake.requests.at(-1)!;
  expect(req.headers.get("authorization")).toBe(`Bearer ${env.tokens.get("cli1")!.accessToken}`);
  expect(req.headers.get("user-agent")).toStartWith("codex_exec/");
  expect(req.headers.get("originator")).toBe("codex_exec");
  expect(req.body.store).toBe(false);
  const row = await eventually(() =>
    env.db
      .selectFrom("request_logs")
      .selectAll()
      .where("endpoint", "=", "/backend-api/codex/responses")
      .executeTakeFirst(),
  );
  expect(row).toMatchObject({ status: "success", account_id: "cli1", model: "gpt-5.2", http_status: 200 });
  expect(row!.client).toStartWith("codex_exec/");
});
