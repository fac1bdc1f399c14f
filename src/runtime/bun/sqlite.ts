/**
 * The Bun seam for SQLite: opens a `bun:sqlite` database with the pragmas the store relies on and
 * wraps it in a Kysely dialect. Nothing outside `src/runtime/bun/` imports `bun:sqlite`.
 *
 * @module
 */
import { constants, Database, type Statement } from "bun:sqlite";
import type { Dialect } from "kysely";
import { BunSqliteDialect } from "kysely-bun-sqlite";

export interface SqliteHandle {
  readonly dialect: Dialect;
  /** Closes the file (after Kysely's destroy, which does not close a caller-owned database). */
  close(): void;
}

/** Statements kept compiled; SQL with a varying number of parameters (batch inserts) cycles through. */
const STATEMENT_CACHE = 256;

/**
 * The database as the Kysely driver sees it: `prepare` hands back a statement compiled once per SQL
 * text (the driver would compile every query anew, which was the largest part of a store read).
 * Statements run synchronously, so one cached statement is never used by two queries at once.
 */
function cachingDatabase(db: Database, cache: Map<string, Statement>): Database {
  const prepare = (sql: string): Statement => {
    let stmt = cache.get(sql);
    if (stmt) return stmt;
    stmt = db.prepare(sql);
    if (cache.size >= STATEMENT_CACHE) {
      const oldest = cache.keys().next().value as string;
      cache.get(oldest)?.finalize();
      cache.delete(oldest);
    }
    cache.set(sql, stmt);
    return stmt;
  };
  const close = (throwOnError?: boolean) => {
    for (const stmt of cache.values()) stmt.finalize();
    cache.clear();
    db.close(throwOnError);
  };
  return { prepare, close } as unknown as Database;
}

/**
 * Opens `path` (or `:memory:`) with WAL, a 30 s busy timeout and foreign keys on. `wal: false`
 * keeps a rollback journal instead (a file about to be moved, like a backup being written, must
 * not leave -wal/-shm files behind).
 */
export function openSqlite(path: string, opts: { wal?: boolean } = {}): SqliteHandle {
  const db = new Database(path, { create: true, strict: false });
  // The busy timeout first: switching to WAL takes a lock another process may hold right now.
  db.exec("PRAGMA busy_timeout = 30000");
  if (path !== ":memory:") db.exec(`PRAGMA journal_mode = ${opts.wal === false ? "DELETE" : "WAL"}`);
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA foreign_keys = ON");
  const cached = new Map<string, Statement>();
  return {
    dialect: new BunSqliteDialect({ database: cachingDatabase(db, cached) }),
    close: () => {
      for (const stmt of cached.values()) stmt.finalize();
      cached.clear();
      db.close(false);
    },
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
