/**
 * `codex-lb import-python DIR [--key FILE] [--dry-run] [--json]`: imports a Python codex-lb data
 * dir into this gateway's store (`CODEX_LB_DATA_DIR` / `CODEX_LB_DATABASE_URL`), which must be
 * another folder. The Python files are only read. Exit codes: 0 imported, 2 bad usage or a
 * source that cannot be imported (nothing written), 1 an unexpected failure.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { TokenCipher } from "../accounts/crypto.ts";
import { ensureDataDir, prepare } from "../cli/boot.ts";
import { ForeignDataError } from "../store/foreign.ts";
import { openMigratedStore, type Store } from "../store/store.ts";
import { applyPythonImport, formatSummary, preparePythonImport } from "./import.ts";
import { ImportSourceError } from "./read.ts";

interface Out {
  write(text: string): unknown;
}

export const IMPORT_PYTHON_USAGE = `usage: codex-lb import-python DIR [--key FILE] [--dry-run] [--json]
  DIR        the Python codex-lb's data dir (its store.db; the key is DIR/encryption.key)
  --key FILE its Fernet key, when it lives elsewhere (CODEX_LB_ENCRYPTION_KEY_FILE there)
  --dry-run  print what would be imported; write nothing
  --json     print the summary as JSON
Imports into the store of CODEX_LB_DATA_DIR (a new folder, not DIR).`;

function parseArgs(
  args: readonly string[],
): { dir: string; key?: string; dryRun: boolean; json: boolean } | string {
  let dir: string | undefined;
  let key: string | undefined;
  let dryRun = false;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--dry-run") dryRun = true;
    else if (a === "--json") json = true;
    else if (a === "--key" || a.startsWith("--key=")) {
      const v = a === "--key" ? args[++i] : a.slice("--key=".length);
      if (!v) return "--key needs a file";
      key = v;
    } else if (a.startsWith("-")) return `unknown option ${a}`;
    else if (dir === undefined) dir = a;
    else return `unexpected argument ${a}`;
  }
  if (!dir) return "the Python codex-lb data dir is missing";
  return { dir, ...(key !== undefined ? { key } : {}), dryRun, json };
}

export async function importPythonCommand(
  args: readonly string[],
  env: Record<string, string | undefined>,
  cwd: string,
  stdout: Out,
  stderr: Out,
): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    stdout.write(`${IMPORT_PYTHON_USAGE}\n`);
    return 0;
  }
  const parsed = parseArgs(args);
  if (typeof parsed === "string") {
    stderr.write(`codex-lb: ${parsed}\n${IMPORT_PYTHON_USAGE}\n`);
    return 2;
  }
  const src = resolve(cwd, parsed.dir);
  const isFile = existsSync(src) && statSync(src).isFile();
  const sourceDir = isFile ? resolve(src, "..") : src;
  const storePath = isFile ? src : join(src, "store.db");
  const keyPath = parsed.key ? resolve(cwd, parsed.key) : join(sourceDir, "encryption.key");
  const { settings, location } = await prepare(env, cwd);
  if (resolve(settings.dataDir) === sourceDir || location.path === storePath) {
    stderr.write(
      `codex-lb: the import target is the Python codex-lb's own folder (${sourceDir}); set CODEX_LB_DATA_DIR to a new folder and run the import again\n`,
    );
    return 2;
  }
  const now = Date.now();
  let store: Store | null = null;
  try {
    // The source is read and decrypted first: a bad source or a wrong key creates nothing here.
    const prepared = await preparePythonImport({ storePath, keyPath, now });
    let cipher: TokenCipher;
    if (parsed.dryRun) {
      // Nothing may be created: an absent store is stood in for by an empty one in memory.
      store = await openMigratedStore(
        location.path !== ":memory:" && existsSync(location.path)
          ? location
          : { kind: "sqlite", path: ":memory:" },
      );
      cipher = existsSync(join(settings.dataDir, "encryption.key"))
        ? TokenCipher.forDataDir(settings.dataDir)
        : new TokenCipher(crypto.getRandomValues(new Uint8Array(32)));
    } else {
      ensureDataDir(settings.dataDir, location);
      store = await openMigratedStore(location);
      cipher = TokenCipher.forDataDir(settings.dataDir);
    }
    const summary = await applyPythonImport(prepared, { db: store.db, cipher, dryRun: parsed.dryRun, now });
    stdout.write(parsed.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    if (!parsed.dryRun && !parsed.json)
      stdout.write(`into ${location.path}; start codex-lb with CODEX_LB_DATA_DIR=${settings.dataDir}\n`);
    return 0;
  } catch (e) {
    if (e instanceof ImportSourceError || e instanceof ForeignDataError) {
      stderr.write(`codex-lb: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    await store?.close();
  }
}
