/**
 * The Bun seam for SQLite: opens a `bun:sqlite` database with the pragmas the store relies on and
 * wraps it in a Kysely dialect. Nothing outside `src/runtime/bun/` imports `bun:sqlite`.
 *
 * @module
 */
import { constants, Database, type Statement } from "bun:sqlite";
import type { Dialect } from "kysely";
import { BunSqliteDialect } from "kysely-bun-sqlite";
import type { SyncSql } from "../../store/sync-sql.ts";

export interface SqliteHandle {
  readonly dialect: Dialect;
  /**
   * The same connection and statement cache, synchronously: only while holding the Kysely
   * connection (see `SqliteExclusive`), so it never runs inside a Kysely transaction.
   */
  readonly sync: SyncSql;
  /** True while a transaction is open on the connection (a Kysely one, between its BEGIN and COMMIT). */
  inTransaction(): boolean;
  /** Closes the file (after Kysely's destroy, which does not close a caller-owned database). */
  close(): void;
}

/** Statements kept compiled; SQL with a varying number of parameters (batch inserts) cycles through. */
const STATEMENT_CACHE = 256;

/**
 * Counts the statements run that may write the watched tables (see `SyncSql.watchStamp`): a
 * statement is classified once, when compiled, and a counting one bumps the count before it runs.
 */
class WriteWatch {
  count = 0;
  constructor(private readonly tables: readonly string[]) {}

  /** `stmt` as compiled from `sql`, counting its runs when it may write a watched table. */
  wrap(sql: string, stmt: Statement): Statement {
    const head = sql.trimStart().slice(0, 6).toLowerCase();
    if (head === "select" || head === "pragma" || !this.tables.some((t) => sql.includes(t))) return stmt;
    const counted =
      <A extends unknown[], R>(fn: (...a: A) => R) =>
      (...a: A): R => {
        this.count++;
        return fn(...a);
      };
    // The surface the Kysely driver and `syncSql` use (bun:sqlite's methods use private fields, so
    // they are called on the statement itself).
    return {
      get columnNames() {
        return stmt.columnNames;
      },
      all: counted((...a: Parameters<Statement["all"]>) => stmt.all(...a)),
      get: counted((...a: Parameters<Statement["get"]>) => stmt.get(...a)),
      run: counted((...a: Parameters<Statement["run"]>) => stmt.run(...a)),
      values: counted((...a: Parameters<Statement["values"]>) => stmt.values(...a)),
      iterate: counted((...a: Parameters<Statement["iterate"]>) => stmt.iterate(...a)),
      finalize: () => stmt.finalize(),
    } as unknown as Statement;
  }
}

/**
 * The database as the Kysely driver sees it: `prepare` hands back a statement compiled once per SQL
 * text (the driver would compile every query anew, which was the largest part of a store read).
 * Statements run synchronously, so one cached statement is never used by two queries at once.
 */
function cachingDatabase(db: Database, cache: Map<string, Statement>, watch: WriteWatch): Database {
  const close = (throwOnError?: boolean) => {
    for (const stmt of cache.values()) stmt.finalize();
    cache.clear();
    db.close(throwOnError);
  };
  return { prepare: cachedPrepare(db, cache, watch), close } as unknown as Database;
}

function cachedPrepare(
  db: Database,
  cache: Map<string, Statement>,
  watch: WriteWatch,
): (sql: string) => Statement {
  return (sql: string): Statement => {
    let stmt = cache.get(sql);
    if (stmt) return stmt;
    stmt = watch.wrap(sql, db.prepare(sql));
    if (cache.size >= STATEMENT_CACHE) {
      const oldest = cache.keys().next().value as string;
      cache.get(oldest)?.finalize();
      cache.delete(oldest);
    }
    cache.set(sql, stmt);
    return stmt;
  };
}

/** {@link SyncSql} on `db`, with the statement cache the Kysely driver uses. */
function syncSql(db: Database, cache: Map<string, Statement>, watch: WriteWatch): SyncSql {
  const prepare = cachedPrepare(db, cache, watch);
  type Params = Parameters<Statement["run"]>;
  const begin = () => prepare("BEGIN IMMEDIATE").run();
  const commit = () => prepare("COMMIT").run();
  const rollback = () => prepare("ROLLBACK").run();
  return {
    // An array binds its items to the `?` placeholders in order (as the Kysely driver passes them).
    all: (sql, params) => prepare(sql).all(params as unknown as Params[0]) as Record<string, unknown>[],
    run: (sql, params) => prepare(sql).run(params as unknown as Params[0]).changes,
    immediate<T>(fn: () => T): T {
      begin();
      let out: T;
      try {
        out = fn();
      } catch (e) {
        if (db.inTransaction) rollback();
        throw e;
      }
      commit();
      return out;
    },
    watchStamp: () => {
      const v = prepare("PRAGMA data_version").values()[0]?.[0];
      return `${watch.count}:${v}`;
    },
  };
}

/**
 * Opens `path` (or `:memory:`) with WAL, a 30 s busy timeout and foreign keys on. `wal: false`
 * keeps a rollback journal instead (a file about to be moved, like a backup being written, must
 * not leave -wal/-shm files behind). `watch` names the tables whose writes `sync.watchStamp()`
 * follows.
 */
export function openSqlite(
  path: string,
  opts: { wal?: boolean; watch?: readonly string[] } = {},
): SqliteHandle {
  const db = new Database(path, { create: true, strict: false });
  // The busy timeout first: switching to WAL takes a lock another process may hold right now.
  db.exec("PRAGMA busy_timeout = 30000");
  if (path !== ":memory:") db.exec(`PRAGMA journal_mode = ${opts.wal === false ? "DELETE" : "WAL"}`);
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA foreign_keys = ON");
  const cached = new Map<string, Statement>();
  const watch = new WriteWatch(opts.watch ?? []);
  return {
    dialect: new BunSqliteDialect({ database: cachingDatabase(db, cached, watch) }),
    sync: syncSql(db, cached, watch),
    inTransaction: () => db.inTransaction,
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
