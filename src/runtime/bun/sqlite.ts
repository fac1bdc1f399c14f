/**
 * The Bun seam for SQLite: opens a `bun:sqlite` database with the pragmas the store relies on and
 * wraps it in a Kysely dialect. Nothing outside `src/runtime/bun/` imports `bun:sqlite`.
 *
 * @module
 */
import { constants, Database } from "bun:sqlite";
import type { Dialect } from "kysely";
import { BunSqliteDialect } from "kysely-bun-sqlite";

export interface SqliteHandle {
  readonly dialect: Dialect;
  /** Closes the file (after Kysely's destroy, which does not close a caller-owned database). */
  close(): void;
}

/** Opens `path` (or `:memory:`) with WAL, a 30 s busy timeout and foreign keys on. */
export function openSqlite(path: string): SqliteHandle {
  const db = new Database(path, { create: true, strict: false });
  if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA busy_timeout = 30000");
  db.exec("PRAGMA foreign_keys = ON");
  return {
    dialect: new BunSqliteDialect({ database: db }),
    close: () => db.close(false),
  };
}

/** Plain synchronous reads of a SQLite file that is not ours (a foreign store, an import source). */
export interface SqliteReader {
  /** Every row of a query; `params` bind to `?` placeholders. */
  all(query: string, ...params: (string | number | null)[]): Record<string, unknown>[];
  close(): void;
}

/** A file path as a SQLite URI path (`%`, `?`, `#` and the like escaped). */
function uriPath(path: string): string {
  return path
    .split("/")
    .map((seg) => encodeURIComponent(seg))
    .join("/");
}

/**
 * Opens `path` so that nothing can be written: read-only, and `immutable=1` so SQLite takes no
 * lock and creates no `-wal`/`-shm` file beside it. A write-ahead log beside the file is not read
 * (callers that need it read a copy with {@link openSqliteCopy}).
 */
export function openSqliteImmutable(path: string): SqliteReader {
  const db = new Database(
    `file:${uriPath(path)}?immutable=1`,
    // biome-ignore lint/suspicious/noExplicitAny: bun:sqlite accepts open flags as a number; its types only list the object form.
    (constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI) as any,
  );
  return readerOf(db);
}

/** Opens a private copy (read-write, so its write-ahead log is replayed); the caller deletes it. */
export function openSqliteCopy(path: string): SqliteReader {
  return readerOf(new Database(path, { create: false, strict: false }));
}

function readerOf(db: Database): SqliteReader {
  return {
    all: (query, ...params) => db.query(query).all(...params) as Record<string, unknown>[],
    close: () => db.close(false),
  };
}
