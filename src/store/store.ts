/**
 * Opens the store: picks a dialect from the database URL (SQLite file or PostgreSQL server), runs
 * the bundled migrations with Kysely's Migrator, and exposes the typed Kysely instance. Callers only
 * ever see `Kysely<Database>`; the same migrations produce the same schema on both.
 *
 * Migrations are safe when several replicas start together: on PostgreSQL Kysely's migrator holds
 * an advisory lock and runs them in one transaction; on SQLite the file's write lock serialises them.
 *
 * @module
 */
import { chmodSync, mkdirSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { Kysely, type MigrationResultSet, Migrator, sql } from "kysely";
import { type Clock, sleep } from "../core/clock.ts";
import {
  type CheckpointOptions,
  NO_CHECKPOINTS,
  openSqlite,
  type WalCheckpoints,
} from "../runtime/bun/sqlite.ts";
import { refuseForeignStore } from "./foreign.ts";
import { bundledMigrations } from "./migrations/index.ts";
import { type Notifications, openPostgres, pgNotifications, redactUrl, type StoreLog } from "./postgres.ts";
import type { Database } from "./schema.ts";
import { type SqliteExclusive, WATCHED } from "./sync-sql.ts";

export type StoreLocation =
  | { readonly kind: "sqlite"; readonly path: string }
  | { readonly kind: "postgres"; readonly url: string };

/** What the logs show of a location: the file, or the URL without its password. */
export function describeLocation(location: StoreLocation): string {
  return location.kind === "sqlite" ? location.path : redactUrl(location.url);
}

/**
 * Resolves `CODEX_LB_DATABASE_URL`: empty → `<dataDir>/store.db`; `sqlite:PATH`, `sqlite://PATH`,
 * `file:PATH` or a plain path → that SQLite file; `sqlite::memory:` → in memory;
 * `postgres://…` or `postgresql://…` → that PostgreSQL database. Anything else is refused with a
 * message naming what is supported.
 */
export function resolveStoreLocation(
  databaseUrl: string,
  dataDir: string,
  cwd = process.cwd(),
): StoreLocation {
  const url = databaseUrl.trim();
  if (url === "") return { kind: "sqlite", path: join(dataDir, "store.db") };
  const m = /^(sqlite|file):(?:\/\/)?(.*)$/.exec(url);
  if (m) {
    const p = m[2] ?? "";
    if (p === ":memory:") return { kind: "sqlite", path: ":memory:" };
    if (p === "") throw new Error("a sqlite: URL needs a path");
    return { kind: "sqlite", path: isAbsolute(p) ? p : resolve(cwd, p) };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error("not a valid postgres:// URL");
    }
    if (!parsed.hostname && !parsed.searchParams.get("host"))
      throw new Error("a postgres:// URL needs a host");
    return { kind: "postgres", url };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(
      `unsupported database scheme ${JSON.stringify(url.split(":")[0])}; supported: SQLite (empty, a path, sqlite:PATH) and PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DB)`,
    );
  }
  return { kind: "sqlite", path: isAbsolute(url) ? url : resolve(cwd, url) };
}

export interface Store {
  readonly db: Kysely<Database>;
  readonly location: StoreLocation;
  /**
   * Messages to the other processes on this database, where the database carries them
   * (PostgreSQL LISTEN/NOTIFY); absent on SQLite, whose file has one gateway.
   */
  readonly notifications?: Notifications;
  /** SQLite only: the connection for synchronous statements (see sync-sql.ts). */
  readonly sqlite?: SqliteExclusive;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  /** Applies pending migrations; the result set lists each one's status. */
  migrate(): Promise<MigrationResultSet>;
  /**
   * A serving gateway's SQLite file: WAL checkpoints from now on run on `timers` outside request
   * commits, until `close()`, which leaves the log checkpointed and truncated (see `WalCheckpoints`
   * in src/runtime/bun/sqlite.ts). Nothing to do on PostgreSQL. A command that opens the store
   * briefly keeps SQLite's own auto-checkpoint.
   */
  startCheckpoints(
    timers: Pick<Clock, "setTimeout" | "clearTimeout">,
    opts?: CheckpointOptions,
  ): WalCheckpoints;
  close(): Promise<void>;
}

/**
 * Opens the store; throws `ForeignDataError` (writing nothing) when the file is not ours. `log`:
 * where a lost PostgreSQL connection is reported (see `openPostgres`).
 */
export function openStore(location: StoreLocation, log?: StoreLog): Store {
  if (location.kind === "postgres") {
    const handle = openPostgres(location.url, log ? { log } : {});
    return wrap(
      new Kysely<Database>({ dialect: handle.dialect }),
      location,
      handle.close,
      pgNotifications(location.url, handle.pool),
    );
  }
  refuseForeignStore(location.path);
  if (location.path !== ":memory:") mkdirSync(dirname(location.path), { recursive: true, mode: 0o700 });
  // What is read from these tables is kept until the connection's stamp of them changes.
  const handle = openSqlite(location.path, { watch: WATCHED });
  // Tokens (sealed), key hashes and the admin password hash live here: owner-only, like the data
  // dir. SQLite gives the -wal and -shm files the database file's permissions.
  if (location.path !== ":memory:") chmodSync(location.path, 0o600);
  const db = new Kysely<Database>({ dialect: handle.dialect });
  // Exclusive calls waiting for the Kysely connection: a later one must not run before them.
  let waiting = 0;
  // Every statement on this connection runs synchronously, so what holding it has to keep out is
  // an open Kysely transaction (Kysely holds the connection from its BEGIN to its COMMIT). With
  // none open and no exclusive call waiting, `fn` runs at once: nothing can run in between, as
  // when holding the connection, without Kysely's acquire/release promises per call.
  // Throws once the connection is closed (then `exclusive` throws, and its caller reports that).
  const runsNow = () => waiting === 0 && !handle.inTransaction();
  const sqlite: SqliteExclusive = {
    free: () => {
      try {
        return runsNow();
      } catch {
        // Closed: nothing runs at once (a request ending during shutdown queues its settle, whose
        // batch is refused and logged).
        return false;
      }
    },
    exclusive: (fn) => {
      if (runsNow()) {
        try {
          return Promise.resolve(fn(handle.sync));
        } catch (e) {
          return Promise.reject(e);
        }
      }
      // Kysely holds its one SQLite connection for a whole transaction: once it is ours, none is open.
      waiting++;
      return db
        .connection()
        .execute(async () => fn(handle.sync))
        .finally(() => {
          waiting--;
        });
    },
  };
  let checkpoints: WalCheckpoints | null = null;
  return wrap(
    db,
    location,
    async () => handle.close(),
    undefined,
    sqlite,
    (timers, opts) => {
      checkpoints ??= handle.checkpoints(timers, opts);
      return checkpoints;
    },
    // Before Kysely's destroy, which closes the connection.
    async () => checkpoints?.stop(),
  );
}

function wrap(
  db: Kysely<Database>,
  location: StoreLocation,
  closeHandle: () => Promise<void>,
  notifications?: Notifications,
  sqlite?: SqliteExclusive,
  startCheckpoints: Store["startCheckpoints"] = () => NO_CHECKPOINTS,
  beforeClose: () => Promise<void> = async () => {},
): Store {
  let closed = false;
  return {
    db,
    location,
    ...(notifications ? { notifications } : {}),
    ...(sqlite ? { sqlite } : {}),
    async ping() {
      if (closed) return false;
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    async migrate() {
      const migrator = new Migrator({ db, provider: bundledMigrations });
      // PostgreSQL: Kysely's migrator takes an advisory lock and runs in a transaction. SQLite:
      // Kysely takes no lock (it assumes one connection), so two processes opening one file
      // together would both create the tables; a write transaction around the whole run
      // serialises them (the second waits on the busy timeout, then finds nothing to do), and
      // a failing migration leaves nothing half-applied.
      if (location.kind === "postgres") return migrator.migrateToLatest();
      await sql`BEGIN IMMEDIATE`.execute(db);
      let result: MigrationResultSet;
      try {
        result = await migrator.migrateToLatest();
      } catch (e) {
        await sql`ROLLBACK`.execute(db);
        throw e;
      }
      await sql.raw(result.error ? "ROLLBACK" : "COMMIT").execute(db);
      return result;
    },
    startCheckpoints,
    async close() {
      if (closed) return;
      closed = true;
      await beforeClose();
      await db.destroy();
      await closeHandle();
    },
  };
}

/**
 * SQLite can answer "database is locked" without waiting out the busy timeout when two processes
 * open one new file at the same moment (the switch to WAL and the first write race; seen as a rare
 * failure of two `codex-lb migrate` started together). Opening and migrating is safe to repeat (the
 * migration run is one transaction, rolled back on error), so such an answer is retried.
 */
function isSqliteBusy(e: unknown): boolean {
  for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
    const code = (cur as { code?: unknown }).code;
    if (
      (typeof code === "string" && code.startsWith("SQLITE_BUSY")) ||
      /database is locked/i.test(cur.message)
    ) {
      return true;
    }
  }
  return false;
}

const BUSY_RETRIES = 40;

/**
 * Opens and migrates; throws with the failing migration's name if one fails. A busy retry waits on
 * `opts.timers` (the real clock's by default); `opts.log` as in {@link openStore}.
 */
export async function openMigratedStore(
  location: StoreLocation,
  opts: { readonly timers?: Pick<Clock, "setTimeout">; readonly log?: StoreLog } = {},
): Promise<Store> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openAndMigrate(location, opts.log);
    } catch (e) {
      if (location.kind !== "sqlite" || attempt >= BUSY_RETRIES || !isSqliteBusy(e)) throw e;
      await sleep(25 * attempt, opts.timers);
    }
  }
}

async function openAndMigrate(location: StoreLocation, log?: StoreLog): Promise<Store> {
  const store = openStore(location, log);
  let outcome: MigrationResultSet;
  try {
    outcome = await store.migrate();
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
  const { error, results } = outcome;
  if (error) {
    await store.close();
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return store;
}
