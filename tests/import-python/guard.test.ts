/**
 * A Python codex-lb data dir (same default folder and file names as ours) is never written: start-up,
 * `migrate` and `accounts import` stop with exit 2 and one line naming `codex-lb import-python` and
 * `CODEX_LB_DATA_DIR`, and every file in it stays byte-identical (same bytes, mode and mtime).
 */

import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateKey } from "../../src/accounts/crypto.ts";
import { ForeignDataError, inspectKeyFile, inspectStoreFile } from "../../src/store/foreign.ts";
import { openMigratedStore } from "../../src/store/store.ts";
import { fakeAuth } from "../fakes/auth.ts";
import { authJsonOf } from "../support/accounts.ts";
import { codexLbCommand } from "../support/process.ts";
import { fernetEncrypt, fernetKey, writePythonDataDir } from "./python-fixture.ts";
import { fingerprint, standardScenario } from "./scenario.ts";

const root = mkdtempSync(join(tmpdir(), "codex-lb-guard-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string>) {
  const r = Bun.spawnSync([...codexLbCommand(), ...args], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: root,
      CODEX_LB_LOG_LEVEL: "silent",
      CODEX_LB_PORT: "0",
      ...env,
    },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test("the fixture's Fernet is the real thing: it reproduces the spec's test vector", async () => {
  const token = await fernetEncrypt("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=", "hello", {
    iv: new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
    time: 499162800,
  });
  expect(token).toBe(
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
  );
});

describe("a Python codex-lb data dir", async () => {
  const pyDir = join(root, ".codex-lb");
  await writePythonDataDir(pyDir, standardScenario(fakeAuth()).spec);
  const before = fingerprint(pyDir);

  for (const args of [["serve"], ["migrate"], [], ["accounts", "import", "AUTH"]]) {
    test(`\`codex-lb ${args.join(" ") || "(no command)"}\` refuses it: exit 2, one line, nothing written`, async () => {
      const auth = join(root, "auth.json");
      writeFileSync(
        auth,
        JSON.stringify(
          authJsonOf(fakeAuth().issue({ email: "a@b.c", chatgptAccountId: "a", chatgptUserId: "u" })),
        ),
      );
      const r = run(
        args.map((a) => (a === "AUTH" ? auth : a)),
        { CODEX_LB_DATA_DIR: pyDir },
      );
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("Python codex-lb store");
      expect(lines[0]).toContain(`codex-lb import-python ${pyDir}`);
      expect(lines[0]).toContain("CODEX_LB_DATA_DIR");
      expect(fingerprint(pyDir)).toEqual(before);
    });
  }

  test("its key alone is refused too (store elsewhere), and nothing is created", () => {
    const other = join(root, "elsewhere", "store.db");
    const dir = join(root, "py-key");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    copyFileSync(join(pyDir, "encryption.key"), join(dir, "encryption.key"));
    const keyBefore = fingerprint(dir);
    const r = run(["serve"], { CODEX_LB_DATA_DIR: dir, CODEX_LB_DATABASE_URL: other });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`${join(dir, "encryption.key")} is a Python codex-lb (Fernet) key`);
    expect(r.stderr).toContain("codex-lb import-python");
    expect(r.stderr).toContain("CODEX_LB_DATA_DIR");
    expect(fingerprint(dir)).toEqual(keyBefore);
    expect(existsSync(other)).toBe(false);
    // In-process too: the key loader never uses it.
    expect(() => loadOrCreateKey(dir)).toThrow(ForeignDataError);
  });

  test("in-process, opening the store refuses it before writing", async () => {
    await expect(openMigratedStore({ kind: "sqlite", path: join(pyDir, "store.db") })).rejects.toBeInstanceOf(
      ForeignDataError,
    );
    expect(fingerprint(pyDir)).toEqual(before);
  });
});

test("a Python store whose tables are still only in its write-ahead log is recognised, read from a copy", () => {
  const dir = join(root, "wal-only");
  mkdirSync(dir);
  const path = join(dir, "store.db");
  const writer = new Database(path, { create: true });
  try {
    writer.exec("PRAGMA journal_mode = WAL");
    writer.exec("PRAGMA wal_autocheckpoint = 0");
    writer.exec("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)");
    writer.exec("CREATE TABLE accounts (id VARCHAR PRIMARY KEY)");
    const before = fingerprint(dir);
    expect(inspectStoreFile(path).kind).toBe("python");
    expect(fingerprint(dir)).toEqual(before);
  } finally {
    writer.close();
  }
});

test("another application's SQLite file is refused as not ours; a non-SQLite file too", () => {
  const dir = join(root, "other-app");
  mkdirSync(dir);
  const db = new Database(join(dir, "store.db"), { create: true });
  db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
  db.close();
  const before = fingerprint(dir);
  const r = run(["migrate"], { CODEX_LB_DATA_DIR: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("is not a codex-lb store");
  expect(r.stderr).toContain("notes");
  expect(fingerprint(dir)).toEqual(before);
  const junk = join(root, "junk");
  mkdirSync(junk);
  writeFileSync(join(junk, "store.db"), "hello, not a database");
  expect(inspectStoreFile(join(junk, "store.db")).kind).toBe("foreign");
  expect(run(["migrate"], { CODEX_LB_DATA_DIR: junk }).code).toBe(2);
});

test("our own key files are never taken for Fernet keys, and Fernet keys always are", () => {
  const dir = join(root, "keys");
  mkdirSync(dir);
  for (let i = 0; i < 300; i++) {
    const ours = join(dir, `ours-${i}`);
    writeFileSync(ours, `${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}\n`);
    expect(inspectKeyFile(ours)).toBe("ours");
    const theirs = join(dir, `theirs-${i}`);
    writeFileSync(theirs, fernetKey());
    expect(inspectKeyFile(theirs)).toBe("fernet");
  }
  expect(inspectKeyFile(join(dir, "absent"))).toBe("absent");
});

test("our own store and key start as before (a fresh dir, then again)", async () => {
  const dir = join(root, "ours");
  expect(run(["migrate"], { CODEX_LB_DATA_DIR: dir }).code).toBe(0);
  expect(inspectStoreFile(join(dir, "store.db")).kind).toBe("ours");
  loadOrCreateKey(dir);
  expect(inspectKeyFile(join(dir, "encryption.key"))).toBe("ours");
  expect(run(["migrate"], { CODEX_LB_DATA_DIR: dir }).code).toBe(0);
});
