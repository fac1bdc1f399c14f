/**
 * Boots the real gateway (SQLite, in a fresh data directory) in a fresh process, for tests of what
 * the process as a whole holds (loaded modules, compiled code): the test runner's own process has
 * loaded and compiled everything by now. The script prints one `RESULT <json>` line.
 *
 * @module
 */
import { expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");

/**
 * Runs `setup` (before the gateway's modules load), boots the gateway with `boot`'s `inject`
 * (source text, e.g. `{ shedStartupCode: false }`) as `running`, then `body`, which must end with
 * `console.log("RESULT " + JSON.stringify(…))`; returns that JSON. The process must exit with 0.
 */
export async function inFreshGateway<T>(opts: { setup?: string; inject?: string; body: string }): Promise<T> {
  const script = `
${opts.setup ?? ""}
const { boot, prepare } = await import(${JSON.stringify(`${root}/src/cli/boot.ts`)});
const { createLogger } = await import(${JSON.stringify(`${root}/src/core/logging.ts`)});
const dir = process.env.DATA_DIR;
const prepared = await prepare({ CODEX_LB_DATA_DIR: dir, CODEX_LB_HOST: "127.0.0.1", CODEX_LB_PORT: "0", CODEX_LB_OAUTH_CALLBACK_PORT: "0", CODEX_LB_LOG_LEVEL: "silent" }, dir);
const running = await boot(prepared, createLogger("silent"), ${opts.inject ?? "{}"});
${opts.body}
`;
  const dir = mkdtempSync(join(tmpdir(), "codex-lb-fresh-"));
  try {
    const proc = Bun.spawn([process.execPath, "--no-env-file", "-e", script], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "", HOME: dir, DATA_DIR: dir },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    expect(await proc.exited, err).toBe(0);
    const line = out.split("\n").find((l) => l.startsWith("RESULT "));
    expect(line, out + err).toBeDefined();
    return JSON.parse(line!.slice(7)) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
