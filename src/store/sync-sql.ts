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
}

/** The store's SQLite connection, lent out whole (absent on PostgreSQL). */
export interface SqliteExclusive {
  /** Waits for the connection, then runs `fn` synchronously on it. */
  exclusive<T>(fn: (sql: SyncSql) => T): Promise<T>;
}
