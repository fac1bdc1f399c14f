/**
 * Synchronous SQL on the store's own SQLite connection, for the few hot-path writes that must be
 * durable before the gateway goes on (API-key limit reservations): each statement runs at once on
 * a statement compiled once per SQL text, with no query building and no promise per statement.
 *
 * Only through {@link SqliteExclusive.exclusive}: it waits for the Kysely connection (so no Kysely
 * transaction is open on it) and runs the callback synchronously while holding it.
 *
 * @module
 */

/** Statements on the SQLite connection, run synchronously. */
export interface SyncSql {
  /** Every row of a query. */
  all(sql: string, params: readonly unknown[]): Record<string, unknown>[];
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params: readonly unknown[]): number;
  /** `BEGIN IMMEDIATE` (the write lock at once), `fn`, `COMMIT`; `ROLLBACK` when `fn` throws. */
  immediate<T>(fn: () => T): T;
  /**
   * A stamp of the tables watched at open (`watch`): it changes whenever this connection has run a
   * statement that may have written one of them (any statement other than a SELECT or PRAGMA
   * naming it, through Kysely or here; triggers included, since they fire from such statements)
   * or another connection has committed anything (`PRAGMA data_version`). Equal stamps: what was
   * read from those tables is still what they hold.
   */
  watchStamp(): string;
}

/** The store's SQLite connection, lent out whole (absent on PostgreSQL). */
export interface SqliteExclusive {
  /** Waits for the connection, then runs `fn` synchronously on it. */
  exclusive<T>(fn: (sql: SyncSql) => T): Promise<T>;
}
