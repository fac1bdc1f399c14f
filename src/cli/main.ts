#!/usr/bin/env bun
/**
 * The `codex-lb` command. Exit codes: 0 ok, 1 failure while running, 2 bad configuration or usage.
 *
 * @module
 */
import { importAuthFile } from "../accounts/cli.ts";
import { closeLog, createLogger } from "../app/logging.ts";
import { version } from "../app/version.ts";
import { importPythonCommand } from "../import-python/cli.ts";
import { PluginLoadError } from "../plugin-host/host.ts";
import { SettingsError } from "../settings/load.ts";
import { ForeignDataError } from "../store/foreign.ts";
import { openMigratedStore } from "../store/store.ts";
import { boot, ensureDataDir, prepare } from "./boot.ts";
import { configTable } from "./config-table.ts";

const HELP = `codex-lb ${version}: pools ChatGPT/Codex accounts behind one OpenAI-compatible endpoint

Usage:
  codex-lb [serve]     start the gateway (default)
  codex-lb migrate     apply pending database migrations and exit
  codex-lb config      print every setting, its environment variable, value and default
                       (--defaults: the table of defaults, as in the README)
  codex-lb accounts import FILE
                       add (or update) the account of a Codex CLI auth.json
  codex-lb import-python DIR [--key FILE] [--dry-run] [--json]
                       import a Python codex-lb data dir (read only, never written) into
                       the store of CODEX_LB_DATA_DIR, which must be a new folder
  codex-lb --version   print the version
  codex-lb --help      print this help

Settings come from CODEX_LB_* environment variables and an optional .env file in the
working directory; see \`codex-lb config\`.`;

export const commands: Record<string, (args: string[]) => Promise<number>> = {
  async serve() {
    const running = await boot(await prepare(process.env, process.cwd()));
    // A bug in a plugin (a forgotten promise, a throwing timer) must not take every account's
    // traffic down with it: log it and keep serving.
    const report = (msg: string, e: unknown) => {
      const err = e instanceof Error ? (e.stack ?? e.message) : String(e);
      try {
        running.log.error({ err }, msg);
      } catch {
        // The log is already closed (shutting down): stderr is all that is left.
        process.stderr.write(`codex-lb: ${msg}: ${err}\n`);
      }
    };
    process.on("unhandledRejection", (reason) => report("unhandled rejection", reason));
    process.on("uncaughtException", (err) => report("uncaught exception", err));
    // Once the listener closes nothing else may hold the event loop open; keep the process alive
    // until the whole shutdown (plugins, store, log flush) has run.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = (signal: string) => {
      running.log.info({ signal }, "signal received");
      void running
        .shutdown()
        .then(() => closeLog(running.log))
        .then(() => {
          clearInterval(keepAlive);
          process.exit(0);
        });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    return await new Promise<number>(() => {});
  },
  async migrate() {
    const { settings, location } = await prepare(process.env, process.cwd());
    ensureDataDir(settings.dataDir, location);
    const store = await openMigratedStore(location);
    await store.close();
    const log = createLogger(settings.logLevel);
    log.info({ store: location.path }, "migrations applied");
    await closeLog(log);
    return 0;
  },
  async accounts(args) {
    const [sub, file, ...extra] = args;
    if (sub !== "import" || !file || extra.length > 0) {
      process.stderr.write("codex-lb: usage: codex-lb accounts import FILE\n");
      return 2;
    }
    const { settings, location } = await prepare(process.env, process.cwd());
    return importAuthFile(file, settings, location, process.stdout, process.stderr);
  },
  "import-python": (args) =>
    importPythonCommand(args, process.env, process.cwd(), process.stdout, process.stderr),
  async config(args) {
    if (args.includes("--defaults")) {
      process.stdout.write(configTable());
      return 0;
    }
    const { settings } = await prepare(process.env, process.cwd());
    process.stdout.write(configTable(settings));
    return 0;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [first = "serve", ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (first === "--version" || first === "-v" || first === "version") {
    process.stdout.write(`codex-lb ${version}\n`);
    return 0;
  }
  const command = commands[first];
  if (!command) {
    process.stderr.write(`codex-lb: unknown command ${JSON.stringify(first)}; see codex-lb --help\n`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof SettingsError || e instanceof PluginLoadError || e instanceof ForeignDataError) {
      process.stderr.write(`codex-lb: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`codex-lb: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  if (code !== 0 || process.argv[2] !== undefined) process.exit(code);
}
