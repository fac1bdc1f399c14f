/**
 * Operator commands end to end against real gateways and the fake upstream: accounts import / list /
 * pause / resume / export / remove, backup while serving → restore elsewhere → the account still
 * proxies, admin reset-password, doctor. The CLI runs as a child process (source or CODEX_LB_BIN).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeAuth } from "../fakes/auth.ts";
import { fakeCodex } from "../fakes/codex.ts";
import { startFakeServer } from "../fakes/server.ts";
import { fakeUsage } from "../fakes/usage.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import { startGateway } from "../support/gateway.ts";
import { codexLbCommand } from "../support/process.ts";

// Each test spawns the command (or the binary) several times; the machine is shared.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "codex-lb-ops-"));
const auth = fakeAuth();
const codex = fakeCodex();
const usage = fakeUsage();
const upstream = startFakeServer({ ...auth.routes, ...usage.routes, ...codex.routes });
const upstreamEnv = {
  CODEX_LB_UPSTREAM_BASE_URL: `${upstream.url}/backend-api`,
  CODEX_LB_AUTH_BASE_URL: upstream.url,
  CODEX_LB_OAUTH_CALLBACK_PORT: "0",
  CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
  CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "3600",
  CODEX_LB_ROUTING_STRATEGY: "fill_first",
};
afterAll(async () => {
  await upstream.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string>) {
  const proc = Bun.spawn([...codexLbCommand(), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, CODEX_LB_LOG_LEVEL: "silent", ...upstreamEnv, ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { out, err, code };
}

const ask = (url: string) =>
  fetch(`${url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
  });

describe("accounts from the command line", () => {
  test("import, list --json, pause, resume, export, remove", async () => {
    const dataDir = join(dir, "accounts");
    const env = { CODEX_LB_DATA_DIR: dataDir };
    const who = identity("ops");
    const bundle = auth.issue(who);
    const file = join(dir, "auth-ops.json");
    writeFileSync(file, JSON.stringify(authJsonOf(bundle)));
    const imported = await cli(["accounts", "import", file], env);
    expect(imported.code).toBe(0);
    expect(imported.err).toBe(`codex-lb: store ${join(dataDir, "store.db")}\n`);
    const list = JSON.parse((await cli(["accounts", "list", "--json"], env)).out) as {
      items: { id: string; email: string; status: string }[];
    };
    expect(list.items).toHaveLength(1);
    const id = list.items[0]!.id;
    expect(list.items[0]).toMatchObject({ email: who.email, status: "active" });
    expect(JSON.stringify(list)).not.toContain(bundle.refreshToken);

    const paused = await cli(["accounts", "pause", id], env);
    expect(paused.code).toBe(0);
    expect(paused.out).toBe(`account ${id}: active -> paused\n`);
    const table = (await cli(["accounts", "list"], env)).out;
    expect(table).toMatch(new RegExp(`${id}\\s+${who.email}\\s+plus\\s+paused\\s+no`));
    expect((await cli(["accounts", "resume", id], env)).out).toBe(`account ${id}: paused -> active\n`);

    const out = join(dir, "exported.json");
    const exported = await cli(["accounts", "export", id, "--out", out], env);
    expect(exported.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const back = JSON.parse(readFileSync(out, "utf8")) as { tokens: { refresh_token: string } };
    expect(back.tokens.refresh_token).toBe(bundle.refreshToken);

    expect((await cli(["accounts", "remove", id], env)).code).toBe(0);
    const gone = await cli(["accounts", "pause", id], env);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain("no account");
    expect(JSON.parse((await cli(["accounts", "list", "--json"], env)).out)).toEqual({ items: [] });
  }, 60_000);
});

describe("backup and restore", () => {
  test("a backup taken while serving, restored into another data dir, still proxies with the account", async () => {
    const first = join(dir, "serving");
    const gw = await startGateway({ dataDir: first, env: upstreamEnv });
    let backupFile = "";
    try {
      const who = identity("bk");
      const bundle = auth.issue(who);
      const imported = await fetch(`${gw.url}/api/accounts/import`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(authJsonOf(bundle)),
      });
      expect(imported.status).toBe(200);
      codex.always(who.chatgptAccountId, { kind: "text", text: "from the original" });
      expect((await ask(gw.url)).status).toBe(200);
      // Online: the gateway keeps serving while the copy is taken.
      backupFile = join(dir, "codex-lb.backup");
      const [b, during] = await Promise.all([
        cli(["backup", backupFile], { CODEX_LB_DATA_DIR: first }),
        ask(gw.url),
      ]);
      expect(b.code).toBe(0);
      expect(b.out).toStartWith(`backup written: ${backupFile}`);
      expect(b.err).toBe(`codex-lb: store ${join(first, "store.db")}\n`);
      expect(during.status).toBe(200);
      expect(statSync(backupFile).mode & 0o777).toBe(0o600);
      // Refuses to overwrite without --force.
      expect((await cli(["backup", backupFile], { CODEX_LB_DATA_DIR: first })).code).toBe(2);
    } finally {
      await gw.stop();
    }

    const second = join(dir, "restored");
    const r = await cli(["restore", backupFile], { CODEX_LB_DATA_DIR: second });
    expect(r.code).toBe(0);
    expect(statSync(join(second, "encryption.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(second, "encryption.key"), "utf8")).toBe(
      readFileSync(join(first, "encryption.key"), "utf8"),
    );
    // A second restore over it needs --force and keeps the replaced files.
    expect((await cli(["restore", backupFile], { CODEX_LB_DATA_DIR: second })).code).toBe(2);
    const forced = await cli(["restore", backupFile, "--force"], { CODEX_LB_DATA_DIR: second });
    expect(forced.code).toBe(0);
    expect(forced.out).toContain(".before-restore-");
    // Not a backup: refused.
    const junk = join(dir, "junk.db");
    writeFileSync(junk, "not sqlite at all, just text that is long enough ".repeat(40));
    expect((await cli(["restore", junk, "--force"], { CODEX_LB_DATA_DIR: second })).code).toBe(2);

    const restored = await startGateway({ dataDir: second, env: upstreamEnv });
    try {
      const before = codex.requests.length;
      const res = await ask(restored.url);
      expect(res.status).toBe(200);
      expect(codex.requests.length).toBe(before + 1);
      // The restored key opened the restored tokens: the upstream got the account's own token.
      const authz = codex.requests.at(-1)!.headers.get("authorization");
      expect(authz).toStartWith("Bearer ");
    } finally {
      await restored.stop();
    }
  }, 60_000);
});

describe("admin reset-password", () => {
  test("clears the password, ends sessions, and the printed token sets a new one from another machine", async () => {
    const dataDir = join(dir, "admin");
    const gw = await startGateway({
      dataDir,
      env: { ...upstreamEnv, CODEX_LB_TRUSTED_PROXIES: "127.0.0.1" },
    });
    try {
      // Behind a trusted proxy no caller is local: the first password takes the start-up token.
      const remote = { "content-type": "application/json", "x-forwarded-for": "203.0.113.9" };
      const startToken = gw.logs().find((l) => typeof l.bootstrapToken === "string")?.bootstrapToken;
      const set = await fetch(`${gw.url}/api/auth/password`, {
        method: "POST",
        headers: remote,
        body: JSON.stringify({ newPassword: "first-password-1", bootstrapToken: startToken }),
      });
      expect(set.status).toBe(200);
      const cookie = (set.headers.get("set-cookie") ?? "").split(";")[0]!;
      const authed = async () =>
        (
          (await (await fetch(`${gw.url}/api/auth/session`, { headers: { ...remote, cookie } })).json()) as {
            authenticated: boolean;
          }
        ).authenticated;
      expect(await authed()).toBe(true);
      const r = await cli(["admin", "reset-password", "--json"], { CODEX_LB_DATA_DIR: dataDir });
      expect(r.code).toBe(0);
      const { bootstrapToken } = JSON.parse(r.out) as { bootstrapToken: string };
      expect(bootstrapToken.length).toBeGreaterThan(20);
      expect(await authed()).toBe(false);
      const session = (await (await fetch(`${gw.url}/api/auth/session`, { headers: remote })).json()) as {
        passwordSet: boolean;
        bootstrapRequired: boolean;
      };
      expect(session).toMatchObject({ passwordSet: false, bootstrapRequired: true });
      const wrong = await fetch(`${gw.url}/api/auth/password`, {
        method: "POST",
        headers: remote,
        body: JSON.stringify({ newPassword: "second-password-2", bootstrapToken: "nope" }),
      });
      expect(wrong.status).toBe(401);
      const ok = await fetch(`${gw.url}/api/auth/password`, {
        method: "POST",
        headers: remote,
        body: JSON.stringify({ newPassword: "second-password-2", bootstrapToken }),
      });
      expect(ok.status).toBe(200);
    } finally {
      await gw.stop();
    }
  }, 30_000);
});

describe("doctor", () => {
  test("all good against a reachable upstream: exit 0, JSON with every check", async () => {
    const dataDir = join(dir, "doctor");
    const who = identity("doc");
    const file = join(dir, "auth-doc.json");
    writeFileSync(file, JSON.stringify(authJsonOf(auth.issue(who))));
    expect((await cli(["accounts", "import", file], { CODEX_LB_DATA_DIR: dataDir })).code).toBe(0);
    const r = await cli(["doctor", "--json", "--port", "0"], { CODEX_LB_DATA_DIR: dataDir });
    const report = JSON.parse(r.out) as {
      ok: boolean;
      store: string;
      checks: { name: string; status: string }[];
    };
    expect(report.store).toBe(join(dataDir, "store.db"));
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(byName).toMatchObject({
      "data dir": "ok",
      store: "ok",
      "encryption key": "ok",
      accounts: "ok",
      upstream: "ok",
      "auth server": "ok",
      listen: "ok",
      "connection guard": "ok",
    });
    expect(["ok", "skip"]).toContain(byName.clock!);
    expect(r.code).toBe(0);
    expect(report.ok).toBe(true);
  }, 30_000);

  test("fails (exit 1) on an unreachable upstream and a key that does not open the tokens", async () => {
    const dataDir = join(dir, "doctor");
    const keyFile = join(dataDir, "encryption.key");
    const realKey = readFileSync(keyFile, "utf8");
    writeFileSync(keyFile, `${Buffer.alloc(32, 7).toString("base64")}\n`, { mode: 0o600 });
    try {
      const r = await cli(["doctor", "--port", "0"], {
        CODEX_LB_DATA_DIR: dataDir,
        CODEX_LB_UPSTREAM_BASE_URL: "http://127.0.0.1:9/backend-api",
      });
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/^fail\s+upstream\s+http:\/\/127\.0\.0\.1:9\/backend-api unreachable/m);
      expect(r.out).toMatch(/^fail\s+encryption key\s+.*does not open 1 of 1/m);
      expect(r.err).toContain(`codex-lb: store ${join(dataDir, "store.db")}`);
    } finally {
      writeFileSync(keyFile, realKey, { mode: 0o600 });
    }
    expect(existsSync(keyFile)).toBe(true);
  }, 30_000);
});
