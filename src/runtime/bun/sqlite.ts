/**
 * The Bun seam for SQLite: opens a `bun:sqlite` database with the pragmas the store relies on and
 * wraps it in a Kysely dialect. Nothing outside `src/runtime/bun/` imports `bun:sqlite`.
 *
 * @module
 */
import { Database, type Statement } from "bun:sqlite";
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
