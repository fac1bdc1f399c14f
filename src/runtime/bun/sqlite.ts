/**
 * The Bun seam for SQLite: opens a `bun:sqlite` database with the pragmas the store relies on and
 * wraps it in a Kysely dialect. Nothing outside `src/runtime/bun/` imports `bun:sqlite`.
 *
 * @module
 */
import { Database } from "bun:sqlite";
import type { Dialect } from "kysely";
import { BunSqliteDialect } from "kysely-bun-sqlite";

export interface SqliteHandle {
  readonly dialect: Dialect;
  /** Closes the file (after Kysely's destroy, which does not close a caller-owned database). */
  close(): void;
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
  return {
    dialect: new BunSqliteDialect({ database: db }),
    close: () => db.close(false),
  };
}
