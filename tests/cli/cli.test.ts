import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codexLbCommand, repoRoot, spawnServe } from "../support/process.ts";

function run(args: string[], env: Record<string, string> = {}, cwd = repoRoot) {
  const r = Bun.spawnSync([...codexLbCommand(), ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("codex-lb command", () => {
  test("--version and --help", async () => {
    const { version } = (await Bun.file(join(repoRoot, "package.json")).json()) as { version: string };
    expect(run(["--version"]).stdout.trim()).toBe(`codex-lb ${version}`);
    const help = run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/\n {2}migrate +apply pending database migrations/);
    expect(help.stdout).toMatch(/\n {2}import-python +import a Python codex-lb data dir/);
  });

  test("an invalid setting exits 2 with one line naming it, and creates nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
    const dataDir = join(dir, "data");
    const r = run(["serve"], { CODEX_LB_PORT: "abc", CODEX_LB_DATA_DIR: dataDir }, dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("CODEX_LB_PORT");
    expect(existsSync(dataDir)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  test("a bad .env value is named too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
    await Bun.write(join(dir, ".env"), "CODEX_LB_LOG_LEVEL=chatty\n");
    const r = run(["config"], {}, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("CODEX_LB_LOG_LEVEL");
    rmSync(dir, { recursive: true, force: true });
  });

  test("an unknown command exits 2", () => {
    const r = run(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command");
  });

  test("a plugin that cannot be loaded stops start-up with exit 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
    const r = run(["serve"], { CODEX_LB_DATA_DIR: join(dir, "d"), CODEX_LB_PLUGINS: "./nope.ts" }, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot load plugin ./nope.ts");
    expect(existsSync(join(dir, "d"))).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  test("migrate creates the data dir (0700) and the store", () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
    const dataDir = join(dir, "data");
    const r = run(["migrate"], { CODEX_LB_DATA_DIR: dataDir }, dir);
    expect(r.code).toBe(0);
    expect(existsSync(join(dataDir, "store.db"))).toBe(true);
    const { statSync } = require("node:fs") as typeof import("node:fs");
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  test("SIGTERM lets an in-flight request finish, then stops cleanly with exit 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
    const child = await spawnServe(
      {
        CODEX_LB_DATA_DIR: join(dir, "data"),
        CODEX_LB_PLUGINS: join(repoRoot, "tests/fixtures/plugins/slow-route.ts"),
      },
      dir,
    );
    const inflight = fetch(`http://127.0.0.1:${child.port}/api/fixtures/slow`);
    await Bun.sleep(150);
    child.proc.kill("SIGTERM");
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ finished: true });
    expect(await child.proc.exited).toBe(0);
    await child.drained;
    expect(child.output()).toContain('"msg":"stopped"');
    // The store was closed: SQLite removes the WAL file on a clean close.
    expect(existsSync(join(dir, "data", "store.db-wal"))).toBe(false);
    const after = await fetch(`http://127.0.0.1:${child.port}/health`).catch(() => null);
    expect(after).toBeNull();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a plugin's forgotten promise or throwing timer is logged and the gateway keeps serving", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
    const child = await spawnServe(
      {
        CODEX_LB_DATA_DIR: join(dir, "data"),
        CODEX_LB_PLUGINS: join(repoRoot, "tests/fixtures/plugins/stray-rejection.ts"),
      },
      dir,
    );
    try {
      const res = await fetch(`http://127.0.0.1:${child.port}/api/fixtures/stray`);
      expect(await res.json()).toEqual({ answered: true });
      await Bun.sleep(100);
      expect((await fetch(`http://127.0.0.1:${child.port}/health`)).status).toBe(200);
      expect(child.output()).toContain("unhandled rejection");
      expect(child.output()).toContain("uncaught exception");
    } finally {
      child.proc.kill("SIGTERM");
      await child.proc.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
