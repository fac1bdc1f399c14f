/**
 * Acceptance, end to end: a Python codex-lb install is imported with `codex-lb import-python`,
 * then the gateway started on the new data dir (real socket, fake ChatGPT backend and auth server)
 * serves the `openai` SDK through the imported accounts with an imported API key, the old admin
 * password (bcrypt) and TOTP log in (and the hash becomes argon2id), a `reauth_required` account
 * is never used, and the imported key's limits hold.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { totpAt } from "../../src/access/admin-auth/totp.ts";
import { fakeAuth } from "../fakes/auth.ts";
import { fakeCodex } from "../fakes/codex.ts";
import { type FakeServer, startFakeServer } from "../fakes/server.ts";
import { fakeUsage } from "../fakes/usage.ts";
import { cookieOf } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { codexLbCommand } from "../support/process.ts";
import { eventually } from "../support/proxy-env.ts";
import { writePythonDataDir } from "./python-fixture.ts";
import { fingerprint, PY_ADMIN_PASSWORD, type Scenario, standardScenario } from "./scenario.ts";

const root = mkdtempSync(join(tmpdir(), "codex-lb-import-e2e-"));
const pyDir = join(root, ".codex-lb");
const dataDir = join(root, "codex-lb-new");
const auth = fakeAuth();
const usage = fakeUsage();
const fake = fakeCodex();
let upstream: FakeServer;
let gw: TestGateway;
let scenario: Scenario;
let pyPrint: Record<string, string>;

beforeAll(async () => {
  upstream = startFakeServer({ ...auth.routes, ...usage.routes, ...fake.routes });
  scenario = standardScenario(auth);
  await writePythonDataDir(pyDir, scenario.spec);
  pyPrint = fingerprint(pyDir);
  const r = Bun.spawnSync([...codexLbCommand(), "import-python", pyDir], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: root,
      CODEX_LB_DATA_DIR: dataDir,
      CODEX_LB_LOG_LEVEL: "silent",
    },
  });
  if (r.exitCode !== 0) throw new Error(`import failed: ${r.stderr.toString()}`);
  // Every answer reports 300 input + 100 output tokens.
  for (const acc of ["acct-py-active", "acct-py-reauth", "acct-py-limited"])
    fake.always(acc, { kind: "text", text: `served by ${acc}`, usage: { input: 300, output: 100 } });
  gw = await startGateway({
    dataDir,
    env: {
      CODEX_LB_UPSTREAM_BASE_URL: `${upstream.url}/backend-api`,
      CODEX_LB_AUTH_BASE_URL: upstream.url,
      CODEX_LB_OAUTH_CALLBACK_PORT: "0",
      CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
      CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "3600",
      CODEX_LB_REQUEST_LOG_FLUSH_MS: "20",
      CODEX_LB_LOG_LEVEL: "info",
    },
  });
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.stop();
  rmSync(root, { recursive: true, force: true });
});

const sdk = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0 });

test("the imported accounts serve the openai SDK with an imported API key; reauth_required stays out", async () => {
  const client = sdk(scenario.keys.open);
  for (let i = 0; i < 4; i++) {
    const r = await client.responses.create({ model: "gpt-5.2", input: `hello ${i}` });
    expect(r.output_text).toBe("served by acct-py-active");
  }
  // The imported sticky session still binds its key to the imported account.
  const chat = await client.chat.completions.create(
    { model: "gpt-5.2", messages: [{ role: "user", content: "again" }] },
    { headers: { "session-id": "sess-1" } },
  );
  expect(chat.choices[0]?.message.content).toBe("served by acct-py-active");
  // Never the reauth_required account, nor the rate-limited one before its reset.
  expect(fake.requests.map((r) => r.chatgptAccountId)).toEqual(Array(5).fill("acct-py-active"));
  // The upstream got the imported installation id and the account's (decrypted, re-sealed) token.
  expect(fake.requests[0]!.headers.get("authorization")).toBe(`Bearer ${scenario.tokens.active.accessToken}`);
  const accounts = await gw.running.store.db.selectFrom("accounts").select(["email", "status"]).execute();
  expect(accounts.map((a) => `${a.email}:${a.status}`).sort()).toEqual([
    "active@python.example:active",
    "limited@python.example:rate_limited",
    "reauth@python.example:reauth_required",
  ]);
});

test("API-key auth is on as it was: unknown and inactive imported keys are refused", async () => {
  const unknown = await sdk(`sk-clb-${"x".repeat(43)}`)
    .responses.create({ model: "gpt-5.2", input: "hi" })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(unknown).toBeInstanceOf(OpenAI.AuthenticationError);
  const inactive = await sdk(scenario.keys.inactive)
    .responses.create({ model: "gpt-5.2", input: "hi" })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(inactive).toBeInstanceOf(OpenAI.AuthenticationError);
});

test("the imported key's limits hold: models outside its list 403, 1000 tokens a day then 429", async () => {
  const client = sdk(scenario.keys.limited);
  const wrongModel = await client.responses.create({ model: "gpt-4o", input: "hi" }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(wrongModel).toBeInstanceOf(OpenAI.PermissionDeniedError);
  const logged = async () =>
    (
      await gw.running.store.db
        .selectFrom("request_logs")
        .select("id")
        .where("api_key_id", "=", "key-limited")
        .where("status", "=", "success")
        .execute()
    ).length;
  for (let i = 1; i <= 3; i++) {
    const r = await client.responses.create({ model: "gpt-5.2", input: `q${i}` });
    expect(r.output_text).toBe("served by acct-py-active");
    expect(await eventually(async () => (await logged()) === i)).toBe(true);
  }
  // Limit states are cached up to 2 s; wait until the refusal shows.
  const refused = await eventually(
    async () =>
      (await client.responses.create({ model: "gpt-5.2", input: "one more" }).then(
        () => null,
        (e: unknown) => e,
      )) instanceof OpenAI.RateLimitError,
    4000,
  );
  expect(refused).toBe(true);
});

let cookie: string | null = null;
async function fetchAdmin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (cookie) headers.set("cookie", cookie);
  return fetch(`${gw.url}${path}`, { ...init, headers });
}

test("the old admin password (bcrypt) and TOTP log in; the hash is then argon2id and still works", async () => {
  const login = (password: string, totpCode?: string) =>
    fetch(`${gw.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: gw.url },
      body: JSON.stringify({ password, ...(totpCode ? { totpCode } : {}) }),
    });
  expect((await login("not it", await totpAt(scenario.totpSecret, Date.now()))).status).toBe(401);
  const noCode = await login(PY_ADMIN_PASSWORD);
  expect(noCode.status).toBe(401);
  expect(((await noCode.json()) as { error: { code: string } }).error.code).toBe("totp_required");
  const ok = await login(PY_ADMIN_PASSWORD, await totpAt(scenario.totpSecret, Date.now()));
  expect(ok.status).toBe(200);
  cookie = cookieOf(ok);
  expect(cookie).toBeTruthy();
  expect((await fetchAdmin("/api/accounts")).status).toBe(200);
  const row = await gw.running.store.db
    .selectFrom("admin_credentials")
    .select("password_hash")
    .executeTakeFirstOrThrow();
  expect(row.password_hash).toStartWith("$argon2id$");
  // Next step's code (a code is accepted once): the argon2id hash verifies the same password.
  const again = await login(PY_ADMIN_PASSWORD, await totpAt(scenario.totpSecret, Date.now() + 30_000));
  expect(again.status).toBe(200);
  // The Python install was never touched.
  expect(fingerprint(pyDir)).toEqual(pyPrint);
});
