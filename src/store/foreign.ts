/**
 * The foreign-store guard: before anything opens the store for writing (or creates a key), the
 * data dir is checked for a store or a key file that is not ours — above all the Python codex-lb's,
 * which uses the same default folder and file names (`~/.codex-lb/store.db`,
 * `~/.codex-lb/encryption.key`). Such files are only ever read (SQLite `immutable`, or a private
 * copy when a write-ahead log has to be replayed) and never written; the process stops with one
 * line that names `codex-lb import-python` and `CODEX_LB_DATA_DIR`.
 *
 * @module
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { openSqliteCopy, openSqliteImmutable, type SqliteReader } from "../runtime/bun/sqlite.ts";

/** What a store file is. `python` and `foreign` are never opened for writing. */
export type StoreFileKind = "absent" | "empty" | "ours" | "python" | "foreign";

/** The table Kysely's migrator keeps: our migration marker. */
export const MIGRATION_MARKER = "kysely_migration";

/** A data dir or store that is not ours: the CLI exits 2 with this one-line message. */
export class ForeignDataError extends Error {
  override name = "ForeignDataError";
}

const SQLITE_HEADER = "SQLite format 3\0";

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

function readHeader(path: string): string {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(16);
    const n = readSync(fd, buf, 0, 16, 0);
    return buf.subarray(0, n).toString("latin1");
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a read-only view of the SQLite file at `path`, which stays byte-identical (and gets no
 * `-wal`/`-shm` neighbours). With `replayWal` and a non-empty write-ahead log beside it, the file
 * and its log are copied to a private temporary folder first and the copy is read, so changes not
 * yet checkpointed are seen; `close` deletes the copy.
 */
export function openSqliteSnapshot(path: string, replayWal = true): SqliteReader {
  const wal = `${path}-wal`;
  if (replayWal && fileSize(wal) > 0) {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-read-"));
    try {
      const copy = join(dir, basename(path));
      copyFileSync(path, copy);
      copyFileSync(wal, `${copy}-wal`);
      const db = openSqliteCopy(copy);
      return {
        all: db.all,
        close() {
          try {
            db.close();
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      };
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }
  return openSqliteImmutable(path);
}

/**
 * Reads of a file another process writes meanwhile (a gateway's checkpoint, a migration, the Python
 * codex-lb) may meet it half-written: the read-only view takes no lock, so SQLite then says
 * "database disk image is malformed" (or the log beside it is gone before it was copied). Such a
 * read is tried again, up to this many times, after
 * waits of 1, 2, 3 … ms (at most about 0.2 s in all); a file that still fails is reported as it is.
 */
const SNAPSHOT_READ_ATTEMPTS = 20;
const pauseCell = new Int32Array(new SharedArrayBuffer(4));

/** An error of a read that met the file mid-write: SQLite's own, or a write-ahead log gone before its copy. */
function midWrite(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_") || code === "ENOENT");
}

/**
 * Runs `fn` over {@link openSqliteSnapshot} of `path`, then closes it; `fn` only reads, so a read
 * that failed (see {@link SNAPSHOT_READ_ATTEMPTS}) is run again on a fresh view.
 */
export function readSqliteSnapshot<T>(path: string, fn: (db: SqliteReader) => T, replayWal = true): T {
  for (let attempt = 1; ; attempt++) {
    try {
      const db = openSqliteSnapshot(path, replayWal);
      try {
        return fn(db);
      } finally {
        db.close();
      }
    } catch (e) {
      if (attempt >= SNAPSHOT_READ_ATTEMPTS || !midWrite(e)) throw e;
      // A synchronous pause: this runs before the store is opened, on the start-up path.
      Atomics.wait(pauseCell, 0, 0, attempt);
    }
  }
}

function tableNames(db: SqliteReader): string[] {
  return db
    .all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .map((r) => String(r.name));
}

function classify(tables: readonly string[]): StoreFileKind {
  if (tables.length === 0) return "empty";
  // A Python store that an older build of ours already wrote into has both: it is still theirs.
  if (tables.includes("alembic_version")) return "python";
  if (tables.includes(MIGRATION_MARKER)) return "ours";
  if (tables.includes("accounts") && tables.includes("dashboard_settings")) return "python";
  return "foreign";
}

/** What the SQLite file at `path` is, read without writing anything; with its table names. */
export function inspectStoreFile(path: string): { kind: StoreFileKind; tables: string[] } {
  const size = fileSize(path);
  if (size < 0) return { kind: "absent", tables: [] };
  if (size === 0) return { kind: "empty", tables: [] };
  if (readHeader(path) !== SQLITE_HEADER) return { kind: "foreign", tables: [] };
  // The main file alone is conclusive once it shows any table: every committed state of our
  // store that has tables has the migration marker (Kysely creates it first).
  let tables = readSqliteSnapshot(path, tableNames, false);
  if (tables.length === 0 && fileSize(`${path}-wal`) > 0) tables = readSqliteSnapshot(path, tableNames, true);
  return { kind: classify(tables), tables };
}

/** What a key file is: ours (standard base64 + newline), a Python codex-lb Fernet key, or absent. */
export type KeyFileKind = "absent" | "ours" | "fernet";

/**
 * Tells a Fernet key (the Python codex-lb's: 44 characters of URL-safe base64 of 32 bytes, written
 * without a newline) from ours (standard base64 of 32 bytes, always written with a newline).
 */
export function inspectKeyFile(path: string): KeyFileKind {
  let text: string;
  try {
    text = readFileSync(path, "latin1");
  } catch {
    return "absent";
  }
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_+/-]{43}=$/.test(trimmed)) return "ours"; // not a key of either kind: the key loader says so
  if (/[-_]/.test(trimmed)) return /[+/]/.test(trimmed) ? "ours" : "fernet";
  if (/[+/]/.test(trimmed)) return "ours";
  return text === trimmed ? "fernet" : "ours";
}

/** The command line a user of the Python codex-lb runs to import `dir`. */
export function importHint(pythonDir: string): string {
  return `set CODEX_LB_DATA_DIR to a new folder and run \`codex-lb import-python ${pythonDir}\` to import it`;
}

/** Throws {@link ForeignDataError} when the store file at `path` is not ours. */
export function refuseForeignStore(path: string): void {
  if (path === ":memory:") return;
  const { kind, tables } = inspectStoreFile(path);
  if (kind === "python") {
    throw new ForeignDataError(
      `${path} is a Python codex-lb store; codex-lb opened it read-only and will never write it: ${importHint(dirname(path))}`,
    );
  }
  if (kind === "foreign") {
    const what =
      tables.length > 0
        ? `its tables (${tables.slice(0, 5).join(", ")}${tables.length > 5 ? ", …" : ""}) lack codex-lb's migration marker`
        : "it is not a SQLite database";
    throw new ForeignDataError(
      `${path} is not a codex-lb store (${what}); codex-lb will not write it: point CODEX_LB_DATA_DIR (or CODEX_LB_DATABASE_URL) at a new folder, or, for a Python codex-lb store, ${importHint(dirname(path))}`,
    );
  }
}

/** Throws {@link ForeignDataError} when the key file at `path` is a Python codex-lb Fernet key. */
export function refuseForeignKey(path: string): void {
  if (inspectKeyFile(path) === "fernet") {
    throw new ForeignDataError(
      `${path} is a Python codex-lb (Fernet) key; codex-lb will never use or write it: ${importHint(dirname(path))}`,
    );
  }
}

/** Checks a data dir's key and a store file before anything is created or written. */
export function refuseForeignData(dataDir: string, storePath: string): void {
  refuseForeignStore(storePath);
  if (existsSync(dataDir)) refuseForeignKey(join(dataDir, "encryption.key"));
}
