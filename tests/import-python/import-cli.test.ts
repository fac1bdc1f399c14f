/**
 * `codex-lb import-python DIR`: imports the standard Python install into a new data dir, reading
 * the Python files only (byte-identical after); a second import updates instead of duplicating;
 * `--dry-run` writes nothing; a wrong key is a clear error naming the key file and writes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { TokenCipher } from "../../src/accounts/crypto.ts";
import type { ImportSummary } from "../../src/import-python/import.ts";
import type { Database } from "../../src/store/schema.ts";
import { openStore } from "../../src/store/store.ts";
import { fakeAuth } from "../fakes/auth.ts";
import { codexLbCommand } from "../support/process.ts";
import { fernetKey, writePythonDataDir } from "./python-fixture.ts";
import { fingerprint, type Scenario, standardScenario } from "./scenario.ts";

const root = mkdtempSync(join(tmpdir(), "codex-lb-import-"));
const pyDir = join(root, ".codex-lb");
let scenario: Scenario;
let pyPrint: Record<string, string>;
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  scenario = standardScenario(fakeAuth());
  await writePythonDataDir(pyDir, scenario.spec);
  pyPrint = fingerprint(pyDir);
});

function cli(args: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync([...codexLbCommand(), "import-python", ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: root, CODEX_LB_LOG_LEVEL: "silent", ...env },
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function withStore<T>(dataDir: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const store = openStore({ kind: "sqlite", path: join(dataDir, "store.db") });
  try {
    return await fn(store.db);
  } finally {
    await store.close();
  }
}

const count = (db: Kysely<Database>, table: keyof Database) =>
  db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow()
    .then((r) => Number(r.n));

describe("codex-lb import-python", () => {
  const target = join(root, "new");

  test("imports everything on the list into a new data dir; the Python files stay byte-identical", async () => {
    const r = cli([pyDir, "--json"], { CODEX_LB_DATA_DIR: target });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as ImportSummary;
    expect(s.dryRun).toBe(false);
    expect(s.counts).toEqual({
      accounts: { created: 3, updated: 0 },
      apiKeys: { created: 3, updated: 0 },
      limits: { imported: 2 },
      firewall: { created: 3, existing: 0 },
      stickySessions: { created: 3, updated: 0 },
      settings: { imported: ["routingStrategy", "stickyTtlSeconds", "apiKeyAuthEnabled"] },
      admin: { password: true, totp: true },
      history: null,
    });
    const reasons = s.skipped.map((k) => `${k.kind} ${k.item}: ${k.reason}`);
    const expectSkip = (re: RegExp) => expect(reasons.some((x) => re.test(x))).toBe(true);
    expectSkip(/^account py_deleted: being deleted/);
    expectSkip(/^account py_corrupt: its refresh token is not a valid Fernet token/);
    expectSkip(/^limit .*credits\/monthly: limit type "credits" is not supported/);
    expectSkip(/^limit .*output_tokens\/weekly: per-model limits \(model_filter="gpt-5.2-codex"\)/);
    expectSkip(/^firewall not-an-address: not an IPv4\/IPv6 address/);
    expectSkip(/^sticky_session prompt_cache:cache-old: expired/);
    expectSkip(/^sticky_session codex_session:sess-gone: its account py_deleted is not imported/);
    expectSkip(/^sticky_session prompt_cache:platform-1: a binding of provider openai_platform/);
    expect(s.skipped).toHaveLength(8);
    expect(s.notes.join("\n")).toMatch(
      /not imported \(history.*\): .*request_logs \(25 rows\).*agent_provider_accounts \(1 rows\)|not imported \(history.*\): .*agent_provider_accounts \(1 rows\).*request_logs \(25 rows\)/,
    );
    expect(s.notes.join("\n")).toContain("recovery codes");
    // No token, key or password in what is printed.
    for (const t of Object.values(scenario.tokens).flatMap((b) => [b.accessToken, b.refreshToken, b.idToken]))
      expect(r.out).not.toContain(t);
    expect(r.out).not.toContain(scenario.keys.open);
    expect(fingerprint(pyDir)).toEqual(pyPrint);

    const cipher = TokenCipher.forDataDir(target);
    await withStore(target, async (db) => {
      const accounts = await db.selectFrom("accounts").selectAll().orderBy("email").execute();
      expect(accounts.map((a) => [a.email, a.status, a.plan_type, a.routing_policy])).toEqual([
        ["active@python.example", "active", "pro", "burn_first"],
        ["limited@python.example", "rate_limited", "plus", "normal"],
        ["reauth@python.example", "reauth_required", "plus", "normal"],
      ]);
      const active = accounts[0]!;
      expect(active.alias).toBe("main");
      expect(active.chatgpt_account_id).toBe("acct-py-active");
      expect(await cipher.decrypt(active.refresh_token_enc!)).toBe(scenario.tokens.active.refreshToken);
      expect(await cipher.decrypt(active.access_token_enc!)).toBe(scenario.tokens.active.accessToken);
      expect(await cipher.decrypt(active.id_token_enc!)).toBe(scenario.tokens.active.idToken);
      const limited = accounts[1]!;
      expect(limited.status_reason).toBe("usage_limit_reached");
      expect(Number(limited.reset_at)).toBeGreaterThan(Date.now() + 3600_000);
      expect(accounts[2]!.status_reason).toBe("refresh_token_reused");

      const keys = await db.selectFrom("api_keys").selectAll().orderBy("name").execute();
      expect(keys.map((k) => [k.name, k.is_active, k.allowed_models, k.key_prefix])).toEqual([
        ["ci bot", 1, '["gpt-5.2","gpt-5.2-codex"]', scenario.keys.limited.slice(0, 15)],
        ["me", 1, null, scenario.keys.open.slice(0, 15)],
        ["old laptop", 0, '["gpt-5.2","gpt-5.2-codex"]', scenario.keys.inactive.slice(0, 15)],
      ]);
      expect(keys[2]!.expires_at).toBeGreaterThan(Date.now());
      const limits = await db
        .selectFrom("api_key_limits")
        .select(["limit_type", "limit_window", "max_value"])
        .orderBy("id")
        .execute();
      expect(limits).toEqual([
        { limit_type: "total_tokens", limit_window: "daily", max_value: 1000 },
        { limit_type: "cost_usd", limit_window: "weekly", max_value: 2.5 },
      ]);
      const fw = await db.selectFrom("firewall_allowlist").select("entry").orderBy("entry").execute();
      expect(fw.map((f) => f.entry)).toEqual(["10.1.2.3", "127.0.0.1", "2001:db8::1"]);
      const sticky = await db.selectFrom("sticky_sessions").selectAll().orderBy("key").execute();
      expect(sticky.map((x) => [x.key, x.kind, x.account_id === active.id])).toEqual([
        ["cache-1", "prompt_cache", false],
        ["sess-1", "session", true],
        ["thread-1", "thread", true],
      ]);
      const runtime = await db
        .selectFrom("settings")
        .selectAll()
        .where("key", "=", "runtime")
        .executeTakeFirstOrThrow();
      expect(JSON.parse(runtime.value)).toEqual({
        routingStrategy: "round_robin",
        stickyTtlSeconds: 3600,
        apiKeyAuthEnabled: true,
      });
      const admin = await db.selectFrom("admin_credentials").selectAll().executeTakeFirstOrThrow();
      expect(admin.password_hash).toStartWith("$2b$");
      expect(admin.totp_secret).toStartWith("enc:v1:");
      expect(admin.totp_secret).not.toContain(scenario.totpSecret);
      const events = await db.selectFrom("account_events").select(["action", "source"]).execute();
      expect(events.every((e) => e.action === "account.import" && e.source === "import-python")).toBe(true);
    });
  });

  test("a second import updates in place: no duplicate account, key, limit, address or binding", async () => {
    const before = await withStore(target, async (db) =>
      Promise.all(
        (["accounts", "api_keys", "api_key_limits", "firewall_allowlist", "sticky_sessions"] as const).map(
          (t) => count(db, t),
        ),
      ),
    );
    const r = cli([pyDir, "--json"], { CODEX_LB_DATA_DIR: target });
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as ImportSummary;
    expect(s.counts.accounts).toEqual({ created: 0, updated: 3 });
    expect(s.counts.apiKeys).toEqual({ created: 0, updated: 3 });
    expect(s.counts.firewall).toEqual({ created: 0, existing: 3 });
    expect(s.counts.stickySessions).toEqual({ created: 0, updated: 3 });
    const after = await withStore(target, async (db) =>
      Promise.all(
        (["accounts", "api_keys", "api_key_limits", "firewall_allowlist", "sticky_sessions"] as const).map(
          (t) => count(db, t),
        ),
      ),
    );
    expect(after).toEqual(before);
    expect(fingerprint(pyDir)).toEqual(pyPrint);
  });

  test("--dry-run prints what would be imported and creates nothing", () => {
    const fresh = join(root, "dry");
    const r = cli([pyDir, "--dry-run"], { CODEX_LB_DATA_DIR: fresh });
    expect(r.code).toBe(0);
    expect(r.out).toContain("dry run (nothing written)");
    expect(r.out).toContain("accounts:        3 new, 0 updated");
    expect(r.out).toContain("account py_deleted: being deleted");
    expect(existsSync(fresh)).toBe(false);
    expect(fingerprint(pyDir)).toEqual(pyPrint);
  });

  test("a wrong key: exit 2, one line naming the key file, nothing written anywhere", async () => {
    const wrongKey = join(root, "wrong.key");
    await Bun.write(wrongKey, fernetKey());
    const fresh = join(root, "wrong-target");
    const r = cli([pyDir, "--key", wrongKey], { CODEX_LB_DATA_DIR: fresh });
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain(`the key ${wrongKey} does not decrypt`);
    expect(r.err).toContain("nothing was written");
    expect(existsSync(fresh)).toBe(false);
    // Into an existing store: it is left exactly as it was.
    const targetPrint = fingerprint(target);
    const again = cli([pyDir, "--key", wrongKey], { CODEX_LB_DATA_DIR: target });
    expect(again.code).toBe(2);
    expect(fingerprint(target)).toEqual(targetPrint);
    expect(fingerprint(pyDir)).toEqual(pyPrint);
  });

  test("bad usage and bad sources exit 2 with a clear line", () => {
    expect(cli([], { CODEX_LB_DATA_DIR: join(root, "x") }).code).toBe(2);
    expect(cli([pyDir, "--bogus"], { CODEX_LB_DATA_DIR: join(root, "x") }).err).toContain(
      "unknown flag --bogus",
    );
    const self = cli([pyDir], { CODEX_LB_DATA_DIR: pyDir });
    expect(self.code).toBe(2);
    expect(self.err).toContain("set CODEX_LB_DATA_DIR to a new folder");
    const none = cli([join(root, "nope")], { CODEX_LB_DATA_DIR: join(root, "x") });
    expect(none.code).toBe(2);
    expect(none.err).toContain("does not exist");
    const ours = cli([target], { CODEX_LB_DATA_DIR: join(root, "x") });
    expect(ours.code).toBe(2);
    expect(ours.err).toContain("already a codex-lb store");
    expect(existsSync(join(root, "x"))).toBe(false);
    expect(fingerprint(pyDir)).toEqual(pyPrint);
  });
});

test("a second import after the Python side changed takes the changes (names, flags, limits)", async () => {
  const dir = join(root, "changing");
  const auth = fakeAuth();
  const sc = standardScenario(auth, { totp: false });
  const key = await writePythonDataDir(join(dir, "py"), sc.spec);
  const target = join(dir, "ours");
  expect(cli([join(dir, "py")], { CODEX_LB_DATA_DIR: target }).code).toBe(0);
  rmSync(join(dir, "py"), { recursive: true });
  const changed = {
    ...sc.spec,
    accounts: sc.spec.accounts.map((a) => (a.id === "py_active" ? { ...a, alias: "renamed" } : a)),
    apiKeys: sc.spec.apiKeys.map((k) =>
      k.id === "key-open"
        ? {
            ...k,
            name: "me, renamed",
            isActive: false,
            limits: [{ type: "input_tokens", window: "5h", max: 77 }],
          }
        : k,
    ),
  };
  await writePythonDataDir(join(dir, "py"), changed, key);
  const r = cli([join(dir, "py"), "--json"], { CODEX_LB_DATA_DIR: target });
  expect(r.code).toBe(0);
  await withStore(target, async (db) => {
    expect(await count(db, "accounts")).toBe(3);
    expect(await count(db, "api_keys")).toBe(3);
    const acc = await db
      .selectFrom("accounts")
      .select("alias")
      .where("email", "=", "active@python.example")
      .executeTakeFirstOrThrow();
    expect(acc.alias).toBe("renamed");
    const k = await db
      .selectFrom("api_keys")
      .selectAll()
      .where("name", "=", "me, renamed")
      .executeTakeFirstOrThrow();
    expect(k.is_active).toBe(0);
    const limits = await db.selectFrom("api_key_limits").selectAll().where("api_key_id", "=", k.id).execute();
    expect(limits.map((l) => [l.limit_type, l.limit_window, l.max_value])).toEqual([
      ["input_tokens", "5h", 77],
    ]);
  });
});

test("--with-history copies the request logs (key usage carries over); a second run replaces them", async () => {
  const dir = join(root, "history");
  const sc = standardScenario(fakeAuth(), { totp: false });
  await writePythonDataDir(join(dir, "py"), sc.spec);
  const before = fingerprint(join(dir, "py"));
  const target = join(dir, "ours");
  for (let run = 1; run <= 2; run++) {
    const r = cli([join(dir, "py"), "--with-history", "--json"], { CODEX_LB_DATA_DIR: target });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out) as ImportSummary;
    expect(summary.counts.history).toEqual({ imported: 25, skipped: 0 });
    expect(summary.notes.join("\n")).not.toContain("request_logs");
    await withStore(target, async (db) => {
      const logs = await db.selectFrom("request_logs").selectAll().execute();
      expect(logs).toHaveLength(25);
      expect(logs.every((l) => l.client === "python-import" && l.status === "success")).toBe(true);
      const active = await db
        .selectFrom("accounts")
        .select("id")
        .where("email", "=", "active@python.example")
        .executeTakeFirstOrThrow();
      expect(logs.every((l) => l.account_id === active.id && l.api_key_id === "key-limited")).toBe(true);
      // The key's usage (kept by triggers from the logs) carries over: 25 requests of 100 + 20 tokens.
      const usage = await db
        .selectFrom("api_key_usage_hourly")
        .select((eb) => [
          eb.fn.sum<number>("requests").as("requests"),
          eb.fn.sum<number>("input_tokens").as("input"),
        ])
        .where("api_key_id", "=", "key-limited")
        .executeTakeFirstOrThrow();
      expect(Number(usage.requests)).toBe(25);
      expect(Number(usage.input)).toBe(2500);
    });
  }
  const text = cli([join(dir, "py"), "--dry-run"], { CODEX_LB_DATA_DIR: join(dir, "dry") });
  expect(text.out).toContain("request logs:    not imported (--with-history to copy them)");
  expect(fingerprint(join(dir, "py"))).toEqual(before);
});

test("a Python store still being written (changes only in its WAL) is read from a copy, WAL included, and not touched", async () => {
  const { Database } = await import("bun:sqlite");
  const { openMigratedStore } = await import("../../src/store/store.ts");
  const { applyPythonImport, preparePythonImport } = await import("../../src/import-python/import.ts");
  const dir = join(root, "live");
  const sc = standardScenario(fakeAuth(), { totp: false });
  await writePythonDataDir(dir, sc.spec);
  const writer = new Database(join(dir, "store.db"));
  try {
    writer.exec("PRAGMA wal_autocheckpoint = 0");
    writer.run("UPDATE api_keys SET name = 'renamed while running' WHERE id = 'key-open'");
    const before = fingerprint(dir);
    expect(before["store.db-wal"]).toBeDefined();
    const prepared = await preparePythonImport({
      storePath: join(dir, "store.db"),
      keyPath: join(dir, "encryption.key"),
      now: Date.now(),
    });
    const store = await openMigratedStore({ kind: "sqlite", path: ":memory:" });
    try {
      const s = await applyPythonImport(prepared, {
        db: store.db,
        cipher: new TokenCipher(crypto.getRandomValues(new Uint8Array(32))),
        dryRun: false,
        now: Date.now(),
        withHistory: true,
      });
      expect(s.counts.accounts.created).toBe(3);
      expect(s.counts.history?.imported).toBe(25);
      const key = await store.db
        .selectFrom("api_keys")
        .select("name")
        .where("id", "=", "key-open")
        .executeTakeFirstOrThrow();
      expect(key.name).toBe("renamed while running");
    } finally {
      await store.close();
    }
    expect(fingerprint(dir)).toEqual(before);
  } finally {
    writer.close();
  }
});
