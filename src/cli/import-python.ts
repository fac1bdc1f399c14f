/**
 * `codex-lb import-python DIR [--key FILE] [--dry-run] [--json] [--with-history]`: imports a Python codex-lb data
 * dir into this gateway's store (`CODEX_LB_DATA_DIR` / `CODEX_LB_DATABASE_URL`), which must be
 * another folder. The Python files are only read. Exit codes: 0 imported, 2 bad usage or a
 * source that cannot be imported (nothing written), 1 an unexpected failure.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { TokenCipher } from "../accounts/crypto.ts";
import { systemClock } from "../core/clock.ts";
import { applyPythonImport, formatSummary, preparePythonImport } from "../import-python/import.ts";
import { ImportSourceError } from "../import-python/read.ts";
import { ForeignDataError } from "../store/foreign.ts";
import { describeLocation, openMigratedStore, type Store } from "../store/store.ts";
import { type Command, EXIT, type Io, type Parsed } from "./args.ts";
import { ensureDataDir } from "./boot.ts";
import { settingsFor } from "./context.ts";

async function run(p: Parsed, io: Io): Promise<number> {
  const cwd = io.cwd;
  const parsed = {
    dir: p.args[0]!,
    key: typeof p.flags.key === "string" ? p.flags.key : undefined,
    dryRun: p.flags["dry-run"] === true,
    json: p.flags.json === true,
    withHistory: p.flags["with-history"] === true,
  };
  const { stdout, stderr } = io;
  const src = resolve(cwd, parsed.dir);
  const isFile = existsSync(src) && statSync(src).isFile();
  const sourceDir = isFile ? resolve(src, "..") : src;
  const storePath = isFile ? src : join(src, "store.db");
  const keyPath = parsed.key ? resolve(cwd, parsed.key) : join(sourceDir, "encryption.key");
  const { settings, location } = await settingsFor(io, p);
  if (
    resolve(settings.dataDir) === sourceDir ||
    (location.kind === "sqlite" && location.path === storePath)
  ) {
    stderr.write(
      `codex-lb: the import target is the Python codex-lb's own folder (${sourceDir}); set CODEX_LB_DATA_DIR to a new folder and run the import again\n`,
    );
    return EXIT.usage;
  }
  const now = systemClock.now();
  let store: Store | null = null;
  try {
    // The source is read and decrypted first: a bad source or a wrong key creates nothing here.
    const prepared = await preparePythonImport({ storePath, keyPath, now });
    let cipher: TokenCipher;
    if (parsed.dryRun) {
      // Nothing may be created: an absent store is stood in for by an empty one in memory.
      const exists =
        location.kind === "postgres" || (location.path !== ":memory:" && existsSync(location.path));
      if (exists) ensureDataDir(settings.dataDir, location);
      store = await openMigratedStore(exists ? location : { kind: "sqlite", path: ":memory:" });
      cipher = existsSync(join(settings.dataDir, "encryption.key"))
        ? TokenCipher.forDataDir(settings.dataDir)
        : new TokenCipher(crypto.getRandomValues(new Uint8Array(32)));
    } else {
      ensureDataDir(settings.dataDir, location);
      store = await openMigratedStore(location);
      cipher = TokenCipher.forDataDir(settings.dataDir);
    }
    const summary = await applyPythonImport(prepared, {
      db: store.db,
      cipher,
      dryRun: parsed.dryRun,
      now,
      withHistory: parsed.withHistory,
    });
    stdout.write(parsed.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    if (!parsed.dryRun && !parsed.json)
      stdout.write(
        `into ${describeLocation(location)}; start codex-lb with CODEX_LB_DATA_DIR=${settings.dataDir}\n`,
      );
    return EXIT.ok;
  } catch (e) {
    if (e instanceof ImportSourceError || e instanceof ForeignDataError) {
      stderr.write(`codex-lb: ${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  } finally {
    await store?.close();
  }
}

/** `codex-lb import-python DIR [--key FILE] [--dry-run] [--json] [--data-dir DIR]` */
export const importPythonCommand: Command = {
  name: "import-python",
  summary: "import a Python codex-lb data dir (only read, never written) into this store",
  description:
    "DIR is the Python codex-lb's data dir (its store.db, and its encryption.key unless --key names\n" +
    "it). The import goes into the store of CODEX_LB_DATA_DIR (or --data-dir), which must be another\n" +
    "folder: accounts, API keys and limits, firewall, sticky sessions, routing strategy, sticky TTL,\n" +
    "API-key auth flag, admin password and TOTP, in one transaction; a second run updates. Every item\n" +
    "not imported is listed with the reason. A wrong key writes nothing (exit 2). Stop the Python\n" +
    "codex-lb first. See docs/migrating.md.",
  flags: [
    { name: "key", value: "FILE", help: "the Python codex-lb's Fernet key, when not DIR/encryption.key" },
    { name: "dry-run", help: "print what would be imported; write nothing" },
    { name: "json", help: "print the summary as JSON" },
    { name: "with-history", help: "also copy the request logs (replacing ones an earlier import copied)" },
    { name: "data-dir", value: "DIR", help: "data dir to import into (overrides CODEX_LB_DATA_DIR)" },
  ],
  args: [{ name: "DIR", complete: "file" }],
  run,
};
