/**
 * Starts a real gateway for a test: a temporary data dir, its own SQLite file, a real socket on
 * 127.0.0.1 (ephemeral port), the built-in plugins plus any extra ones, and every log line captured
 * (tests grep them, e.g. for leaked tokens).
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { boot, prepare, type Running } from "../../src/cli/boot.ts";
import type { Clock, Random } from "../../src/core/clock.ts";
import { createLogger } from "../../src/core/logging.ts";
import type { Plugin } from "../../src/plugin-host/api.ts";

export interface TestGateway {
  readonly url: string;
  readonly dataDir: string;
  readonly running: Running;
  /** Every log line so far, parsed. */
  logs(): Record<string, unknown>[];
  /** The raw log text so far. */
  logText(): string;
  stop(): Promise<void>;
}

export async function startGateway(
  opts: {
    env?: Record<string, string>;
    plugins?: readonly Plugin[];
    dataDir?: string;
    /** The gateway's clock and timers (a FakeClock: the test moves time instead of sleeping). */
    clock?: Clock;
    random?: Random;
  } = {},
): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "codex-lb-test-"));
  const env: Record<string, string | undefined> = {
    CODEX_LB_DATA_DIR: dataDir,
    CODEX_LB_PORT: "0",
    CODEX_LB_HOST: "127.0.0.1",
    CODEX_LB_LOG_LEVEL: "debug",
    CODEX_LB_UPSTREAM_BASE_URL: "http://127.0.0.1:9/backend-api",
    CODEX_LB_AUTH_BASE_URL: "http://127.0.0.1:9",
    ...opts.env,
  };
  const prepared = await prepare(env, dataDir);
  const extra = (opts.plugins ?? []).map((plugin) => ({ plugin, source: "test" }));
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const log = createLogger(prepared.settings.logLevel, sink);
  const running = await boot({ ...prepared, plugins: [...prepared.plugins, ...extra] }, log, {
    clock: opts.clock,
    random: opts.random,
    // Dropping start-up's code would make the engine compile all of this process's code anew at
    // each of the suite's many boots (tests/runtime/startup-memory.test.ts checks the default).
    shedStartupCode: false,
  });
  const url = `http://127.0.0.1:${running.listening.port}`;
  return {
    url,
    dataDir,
    running,
    logText: () => chunks.join(""),
    logs: () =>
      chunks
        .join("")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      await running.shutdown();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
