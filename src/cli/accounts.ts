/**
 * `codex-lb accounts import FILE`: stores the account of a Codex CLI auth.json from the command
 * line (same rules as `POST /api/accounts/import`), printing its id and email, never a token.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { parseAuthJsonText } from "../accounts/auth-json.ts";
import { TokenCipher } from "../accounts/crypto.ts";
import { AccountRepository } from "../accounts/repository.ts";
import { GatewayError } from "../core/errors.ts";
import type { Settings } from "../settings/schema.ts";
import { describeLocation, openMigratedStore, type StoreLocation } from "../store/store.ts";
import { ensureDataDir } from "./boot.ts";

interface Out {
  write(text: string): unknown;
}

/** Imports one file; returns the exit code (0 ok, 2 for a missing or invalid file). */
export async function importAuthFile(
  file: string,
  settings: Readonly<Settings>,
  location: StoreLocation,
  stdout: Out,
  stderr: Out,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    stderr.write(`codex-lb: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}\n`);
    return 2;
  }
  let auth: ReturnType<typeof parseAuthJsonText>;
  try {
    auth = parseAuthJsonText(text);
  } catch (e) {
    if (e instanceof GatewayError) {
      stderr.write(`codex-lb: ${file}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  ensureDataDir(settings.dataDir, location);
  stderr.write(`codex-lb: store ${describeLocation(location)}\n`);
  const store = await openMigratedStore(location);
  try {
    const repo = new AccountRepository(store.db, TokenCipher.forDataDir(settings.dataDir));
    const r = await repo.upsertFromTokens(auth, { source: "import", lastRefreshAt: auth.lastRefreshAt });
    stdout.write(
      `${r.created ? "added" : "updated"} account ${r.id} (${r.email ?? "no email"}), status ${r.status}\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
