/**
 * Synchronous SQL on the store's own SQLite connection, for the few hot-path writes that must be
 * durable before the gateway goes on (API-key limit reservations): each statement runs at once on
 * a statement compiled once per SQL text, with no query building and no promise per statement.
 *
 * Only through {@link SqliteExclusive.exclusive}: it runs the callback synchronously when no Kysely
 * transaction is open on the connection (waiting for the Kysely connection when one is, or when an
 * earlier exclusive call is still waiting for it).
 *
 * @module
 */

/** Statements on the SQLite connection, run synchronously. */
export interface SyncSql {
  /** Every row of a query. */
  all(sql: string, params: readonly unknown[]): Record<string, unknown>[];
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params: readonly unknown[]): number;
  /**
   * `BEGIN IMMEDIATE` (the write lock at once), `fn`, `COMMIT`; `ROLLBACK` when `fn` or the `COMMIT` throws.
   * `bulk`: `fn` runs statements that each change many pages (multi-row inserts into an indexed,
   * triggered table), whose statement journals are then kept in memory for the transaction (see
   * the SQLite runtime's `immediate`).
   */
  immediate<T>(fn: () => T, opts?: { readonly bulk?: boolean }): T;
  /**
   * A stamp of the tables of one of the {@link WATCHED} sets: it changes whenever this connection
   * has run a statement that may have written one of them (any statement other than a SELECT or
   * PRAGMA naming one of the set's tables, in any letter case, through Kysely or here) or another
   * connection has committed anything (`PRAGMA data_version`). Writes by triggers and foreign-key
   * actions are seen only when the statement that fired them names a table of the set, which is
   * why {@link WATCHED} lists with each set every table whose triggers or foreign-key actions
   * write into it. Equal stamps: what was read from those tables is still what they hold.
   */
  watchStamp(set: WatchedSet): string;
}

/**
 * The sets of tables whose writes the store's SQLite connection follows (`SyncSql.watchStamp`):
 * - `limits`: what API-key usage is summed from (the logs, the hour buckets their triggers keep,
 *   the reservations); the reservations' group commit keeps what it read of them;
 * - `accounts`: what account snapshots are read from; the snapshot cache keeps its list.
 *
 * A statement is matched by the names it contains, so a write made by a trigger or a cascade is
 * counted only through the table of the statement that fired it: a set must list every table whose
 * triggers or foreign-key actions change what the set's readers read. Two cascades are left out on
 * purpose: deleting an API key deletes its reservations (a deleted key reserves nothing again), and
 * deleting an account clears `request_logs.account_id` (limits are not summed by account). Names are
 * lower case.
 */
export const WATCHED = {
  limits: ["request_logs", "api_key_usage_hourly", "api_key_reservations"],
  accounts: ["accounts", "usage_snapshots"],
} as const satisfies Record<string, readonly string[]>;
export type WatchedSet = keyof typeof WATCHED;

/** The store's SQLite connection, lent out whole (absent on PostgreSQL). */
export interface SqliteExclusive {
  /**
   * Runs `fn` synchronously on the connection: at once when no Kysely transaction is open on it and
   * no earlier call waits; otherwise once the Kysely connection is free (a call never overtakes a waiting one).
   */
  exclusive<T>(fn: (sql: SyncSql) => T): Promise<T>;
  /**
   * Whether {@link exclusive} would run its callback at once (no Kysely transaction open, no call
   * waiting); false once the connection is closed (never throws).
   */
  free(): boolean;
}
