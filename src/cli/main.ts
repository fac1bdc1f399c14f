#!/usr/bin/env bun
/**
 * The `codex-lb` command: one table of commands (`root`) feeds the parser, every help text and
 * the shell completions. `--help` anywhere (before `--`) prints the help of the command it follows
 * and runs nothing; an unknown command or flag exits 2.
 *
 * Exit codes: 0 ok; 1 the command ran and failed (a doctor check, a missing account, a write);
 * 2 bad usage or configuration (unknown command or flag, missing argument, invalid setting, unusable
 * data dir, busy port or bad host), nothing done.
 *
 * @module
 */
import { closeLog, createLogger } from "../core/logging.ts";
import { version } from "../core/version.ts";
import { PluginLoadError } from "../plugin-host/errors.ts";
import { applyStartEnv } from "../runtime/bun/start-env.ts";
import { SettingsError } from "../settings/load.ts";
import { SettingsSchema } from "../settings/schema.ts";
import { ForeignDataError } from "../store/foreign.ts";
import { describeLocation, openMigratedStore } from "../store/store.ts";
import {
  type Command,
  EXIT,
  helpText,
  type Io,
  parse,
  resolve,
  UsageError,
  usageLine,
  wantsHelp,
} from "./args.ts";
import { backupCommand, restoreCommand } from "./backup.ts";
import { boot, ensureDataDir, StartupError } from "./boot.ts";
import { completionsCommand } from "./completions.ts";
import { configTable } from "./config-table.ts";
import { settingsFor } from "./context.ts";
import { doctorCommand } from "./doctor.ts";
import { importPythonCommand } from "./import-python.ts";
import { accountsCommand, adminCommand, keysCommand } from "./store-commands.ts";

/** True when this module is the program being run (`bun src/cli/main.ts`, the binary). */
let isProgram = false;

const DATA_DIR_FLAG = {
  name: "data-dir",
  value: "DIR",
  help: "data dir (overrides CODEX_LB_DATA_DIR)",
} as const;

const serveCommand: Command = {
  name: "serve",
  summary: "start the gateway (the default command)",
  description:
    "Flags override the environment: --port 8080 wins over CODEX_LB_PORT. SIGTERM or SIGINT stops it\n" +
    "gracefully (in-flight requests get CODEX_LB_SHUTDOWN_GRACE_SECONDS to finish).",
  flags: [
    { name: "host", value: "HOST", help: "address to listen on (overrides CODEX_LB_HOST)" },
    { name: "port", short: "p", value: "PORT", help: "port to listen on (overrides CODEX_LB_PORT)" },
    DATA_DIR_FLAG,
  ],
  async run(p, io) {
    const prepared = await settingsFor(io, p);
    // Before anything else happens: this may re-execute the process (same pid) to raise fetch's cap
    // and start the allocator with its setting (only when this module is the program: never from a
    // caller of main(), like a test runner).
    const fetchLimit = isProgram ? applyStartEnv(prepared.settings.upstreamMaxRequests).fetchLimit : null;
    if (fetchLimit?.kind === "unsupported")
      io.stderr.write(
        `codex-lb: cannot raise fetch's limit of 256 upstream requests at once on this platform; set BUN_CONFIG_MAX_HTTP_REQUESTS=${prepared.settings.upstreamMaxRequests} before starting\n`,
      );
    // Signals are handled from before the listener opens: a SIGTERM that arrives right after the
    // "listening" line (before boot has returned) still stops the gateway gracefully, exit 0.
    let running: Awaited<ReturnType<typeof boot>> | null = null;
    let pending: string | null = null;
    // Once the listener closes nothing else may hold the event loop open; keep the process alive
    // until the whole shutdown (plugins, store, log flush) has run.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = (signal: string) => {
      const r = running;
      if (!r) {
        pending ??= signal;
        return;
      }
      r.log.info({ signal }, "signal received");
      void r
        .shutdown()
        .then(() => closeLog(r.log))
        .then(() => {
          clearInterval(keepAlive);
          process.exit(0);
        });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    let booted: Awaited<ReturnType<typeof boot>>;
    try {
      booted = await boot(prepared);
    } catch (e) {
      clearInterval(keepAlive);
      throw e;
    }
    running = booted;
    // A bug in a plugin (a forgotten promise, a throwing timer) must not take every account's
    // traffic down with it: log it and keep serving.
    const report = (msg: string, e: unknown) => {
      const err = e instanceof Error ? (e.stack ?? e.message) : String(e);
      try {
        booted.log.error({ err }, msg);
      } catch {
        // The log is already closed (shutting down): stderr is all that is left.
        process.stderr.write(`codex-lb: ${msg}: ${err}\n`);
      }
    };
    process.on("unhandledRejection", (reason) => report("unhandled rejection", reason));
    process.on("uncaughtException", (err) => report("uncaught exception", err));
    if (pending) stop(pending);
    return await new Promise<number>(() => {});
  },
};

const migrateCommand: Command = {
  name: "migrate",
  summary: "apply pending database migrations and exit",
  flags: [DATA_DIR_FLAG],
  async run(p, io) {
    const { settings, location } = await settingsFor(io, p);
    ensureDataDir(settings.dataDir, location);
    // The store it used is named by the "migrations applied" log line.
    const store = await openMigratedStore(location);
    await store.close();
    const log = createLogger(settings.logLevel);
    log.info({ store: describeLocation(location) }, "migrations applied");
    await closeLog(log);
    return EXIT.ok;
  },
};

const configCommand: Command = {
  name: "config",
  summary: "print every setting: its environment variable, value in force and default",
  flags: [
    {
      name: "defaults",
      help: "print the table of defaults (as in the README) without reading the environment",
    },
    { name: "json", help: "print the values in force as JSON" },
  ],
  async run(p, io) {
    if (p.flags.defaults === true) {
      io.stdout.write(configTable());
      return EXIT.ok;
    }
    const { settings } = await settingsFor(io, p);
    if (p.flags.json === true) {
      // Secret settings (a metrics token) are shown as set or not, never by value.
      const props = SettingsSchema.properties as Record<string, { secret?: boolean }>;
      const shown = Object.fromEntries(
        Object.entries(settings).map(([k, v]) => [k, props[k]?.secret && v ? "[set]" : v]),
      );
      io.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    } else io.stdout.write(configTable(settings));
    return EXIT.ok;
  },
};

const versionCommand: Command = {
  name: "version",
  summary: "print the version",
  async run(_p, io) {
    io.stdout.write(`codex-lb ${version}\n`);
    return EXIT.ok;
  },
};

export const root: Command = {
  name: "codex-lb",
  summary: `codex-lb ${version}: pools ChatGPT/Codex accounts behind one OpenAI-compatible endpoint`,
  description:
    "Settings come from CODEX_LB_* environment variables and an optional .env file in the working\n" +
    "directory (other .env.* files are not read); see `codex-lb config`.\n" +
    "Exit codes: 0 ok, 1 the command failed, 2 bad usage or configuration (nothing done).",
  flags: [{ name: "version", short: "v", help: "print the version" }],
  subcommands: [
    serveCommand,
    migrateCommand,
    configCommand,
    accountsCommand,
    importPythonCommand,
    keysCommand,
    adminCommand,
    backupCommand,
    restoreCommand,
    doctorCommand,
    completionsCommand(() => root),
    versionCommand,
  ],
};

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  // `codex-lb help accounts import` is `codex-lb accounts import --help`.
  const words = argv[0] === "help" ? [...argv.slice(1), "--help"] : argv;
  let target: ReturnType<typeof resolve>;
  try {
    target = resolve(root, words.length === 0 ? ["serve"] : words);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`codex-lb: ${e.message}; see codex-lb --help\n`);
    return EXIT.usage;
  }
  const { cmd, path } = target;
  if (wantsHelp(target.rest)) {
    io.stdout.write(helpText(path, cmd));
    return EXIT.ok;
  }
  if (
    cmd === root &&
    (target.rest[0] === "--version" || target.rest[0] === "-v") &&
    target.rest.length === 1
  ) {
    io.stdout.write(`codex-lb ${version}\n`);
    return EXIT.ok;
  }
  if (!cmd.run) {
    const word = target.rest[0];
    io.stderr.write(
      word?.startsWith("-")
        ? `codex-lb: unknown flag ${word}; see ${usageLine(path, cmd)} --help\n`
        : `codex-lb: ${usageLine(path, cmd)}: a command is needed\n${helpText(path, cmd)}`,
    );
    return EXIT.usage;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(cmd, target.rest);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`codex-lb: ${e.message}\nusage: ${usageLine(path, cmd)}\n`);
    return EXIT.usage;
  }
  try {
    return await cmd.run(parsed, io);
  } catch (e) {
    if (
      e instanceof SettingsError ||
      e instanceof PluginLoadError ||
      e instanceof StartupError ||
      e instanceof ForeignDataError
    ) {
      io.stderr.write(`codex-lb: ${e.message}\n`);
      return EXIT.usage;
    }
    io.stderr.write(`codex-lb: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failure;
  }
}

function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

if (import.meta.main) {
  isProgram = true;
  const code = await main(process.argv.slice(2));
  const argv = process.argv.slice(2);
  // `serve` never returns; every other command exits with its code (open handles or not).
  if (code !== 0 || argv.length > 0) process.exit(code);
}
