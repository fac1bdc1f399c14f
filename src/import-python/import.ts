/**
 * One import of a Python codex-lb install: read its store (never written), decrypt its secrets
 * with its Fernet key, map, and write into our store in one transaction. Used by
 * `codex-lb import-python` and `POST /api/import/python`.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import type { Kysely } from "kysely";
import type { TokenCipher } from "../accounts/crypto.ts";
import type { Database } from "../store/schema.ts";
import { applyPlan, type ImportCounts } from "./apply.ts";
import { FernetKey } from "./fernet.ts";
import { type ImportPlan, planImport, type Skipped } from "./plan.ts";
import { ImportSourceError, readPythonStore } from "./read.ts";

/** What an import did (or, in a dry run, would do). */
export interface ImportSummary {
  readonly dryRun: boolean;
  readonly source: { readonly store: string; readonly key: string; readonly alembicVersion: string | null };
  readonly counts: ImportCounts;
  /** Every row or value not imported, with the reason. */
  readonly skipped: readonly Skipped[];
  readonly notes: readonly string[];
}

/** Reads a Fernet key file; {@link ImportSourceError} naming it when absent or not a Fernet key. */
export async function readFernetKeyFile(path: string): Promise<FernetKey> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ImportSourceError(
      `cannot read the key file ${path} (${(e as NodeJS.ErrnoException).code ?? "error"}); pass the Python codex-lb's encryption.key with --key FILE`,
    );
  }
  const key = FernetKey.parse(text);
  if (!key) throw new ImportSourceError(`${path} is not a Fernet key (44 characters of URL-safe base64)`);
  return key;
}

/** A source read and decrypted, ready to write: nothing has been written anywhere yet. */
export interface PreparedImport {
  /** The store as named in the summary. */
  readonly storePath: string;
  /** The file actually read (the history import reads it again). */
  readonly sourcePath: string;
  readonly keyPath: string;
  readonly alembicVersion: string | null;
  readonly plan: ImportPlan;
}

/**
 * Reads the Python store (never writing it) and decrypts its secrets with its key. Throws
 * {@link ImportSourceError} for a bad source or a wrong key, before anything is written.
 */
export async function preparePythonImport(opts: {
  readonly storePath: string;
  readonly keyPath: string;
  /** The key, when already read (an upload); else read from `keyPath`. */
  readonly key?: FernetKey;
  readonly now: number;
}): Promise<PreparedImport> {
  const snapshot = readPythonStore(opts.storePath);
  const key = opts.key ?? (await readFernetKeyFile(opts.keyPath));
  const plan = await planImport(snapshot, key, { now: opts.now, keyPath: opts.keyPath });
  return {
    storePath: opts.storePath,
    sourcePath: opts.storePath,
    keyPath: opts.keyPath,
    alembicVersion: snapshot.alembicVersion,
    plan,
  };
}

/** Writes a prepared import into our store (one transaction; rolled back in a dry run). */
export async function applyPythonImport(
  prepared: PreparedImport,
  opts: {
    readonly db: Kysely<Database>;
    readonly cipher: TokenCipher;
    readonly dryRun: boolean;
    readonly now: number;
    /** Also copy the request-log history. */
    readonly withHistory?: boolean;
  },
): Promise<ImportSummary> {
  const skipped = [...prepared.plan.skipped];
  const notes = [...prepared.plan.notes];
  const ignored = prepared.plan.ignoredWithRows.filter(
    (t) => !(opts.withHistory && t.table === "request_logs"),
  );
  if (ignored.length > 0)
    notes.push(
      `not imported (history, or features codex-lb does not have): ${ignored.map((t) => `${t.table} (${t.rows} rows)`).join(", ")}`,
    );
  const counts = await applyPlan(opts.db, opts.cipher, prepared.plan, {
    now: opts.now,
    dryRun: opts.dryRun,
    skipped,
    notes,
    historyFrom: opts.withHistory ? prepared.sourcePath : undefined,
  });
  return {
    dryRun: opts.dryRun,
    source: { store: prepared.storePath, key: prepared.keyPath, alembicVersion: prepared.alembicVersion },
    counts,
    skipped,
    notes,
  };
}

/** The summary as lines of text for a terminal. */
export function formatSummary(s: ImportSummary): string {
  const c = s.counts;
  const verb = s.dryRun ? "would import" : "imported";
  const lines = [
    `${s.dryRun ? "dry run (nothing written): " : ""}${verb} from ${s.source.store} (alembic ${s.source.alembicVersion ?? "?"})`,
    `  accounts:        ${c.accounts.created} new, ${c.accounts.updated} updated`,
    `  API keys:        ${c.apiKeys.created} new, ${c.apiKeys.updated} updated (${c.limits.imported} limits)`,
    `  firewall:        ${c.firewall.created} new, ${c.firewall.existing} already listed`,
    `  sticky sessions: ${c.stickySessions.created} new, ${c.stickySessions.updated} updated`,
    `  settings:        ${c.settings.imported.length > 0 ? c.settings.imported.join(", ") : "none"}`,
    `  admin:           password ${c.admin.password ? "yes" : "no"}, TOTP ${c.admin.totp ? "yes" : "no"}`,
    `  request logs:    ${c.history ? `${c.history.imported} rows${c.history.skipped > 0 ? ` (${c.history.skipped} without a time left out)` : ""}` : "not imported (--with-history to copy them)"}`,
  ];
  if (s.skipped.length > 0) {
    lines.push(`not imported (${s.skipped.length}):`);
    for (const k of s.skipped) lines.push(`  - ${k.kind} ${k.item}: ${k.reason}`);
  }
  for (const n of s.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}
