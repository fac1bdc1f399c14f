/**
 * The Bun seam for SQLite: opens a `bun:sqlite` database with the pragmas the store relies on and
 * wraps it in a Kysely dialect. Nothing outside `src/runtime/bun/` imports `bun:sqlite`.
 *
 * @module
 */
import { constants, Database, type Statement } from "bun:sqlite";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { endianness } from "node:os";
import type { Dialect } from "kysely";
// The package's ES module build, by path: its package.json has no "exports" and its "main" is the
// CommonJS build, which Bun's runtime picks and which `require`s Kysely's CommonJS build, a second
// copy of Kysely (263 modules; idle RSS 78.0 → 72.8 MB without it, measured in docs/proxy.md) next
// to the ES build the store imports. The bundler of the compiled binary already picks this file
// ("module").
import { BunSqliteDialect } from "kysely-bun-sqlite/dist/index.js";
import type { Clock } from "../../core/clock.ts";
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
  /**
   * Takes WAL checkpoints off the request path (see {@link WalCheckpoints}); a no-op for a file
   * without a write-ahead log (`:memory:`, `wal: false`).
   */
  checkpoints(timers: CheckpointTimers, opts?: CheckpointOptions): WalCheckpoints;
  /** Closes the file (after Kysely's destroy, which does not close a caller-owned database). */
  close(): void;
}

/** The timers checkpoints run on: the gateway's clock (a FakeClock in tests). */
export type CheckpointTimers = Pick<Clock, "setTimeout" | "clearTimeout">;

export interface CheckpointOptions {
  /** Milliseconds between checks for new writes (default {@link CHECKPOINT_INTERVAL_MS}). */
  readonly intervalMs?: number;
  /** A `-wal` file larger than this is truncated by the next pass (default {@link MAX_WAL_BYTES}). */
  readonly maxWalBytes?: number;
  /** A pass that failed (the next one tries again). */
  readonly onError?: (e: Error) => void;
  /**
   * Opens the worker thread (default: a {@link CheckpointWorker} on `path`). A test passes one that
   * throws, as `new Worker` can; the passes then stay on the connection.
   */
  readonly openWorker?: (path: string) => CheckpointPasses;
}

/** The worker thread's side of the checkpoints: PASSIVE passes on its own connection. */
export interface CheckpointPasses {
  passive(rounds: number, tail: number): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Checkpoints of the write-ahead log, outside request commits. SQLite's own auto-checkpoint runs
 * inside the commit that crosses 1,000 WAL pages, so one request in every few hundred waited for a
 * whole checkpoint (35–270 ms at p99 under load). Instead, with the auto-checkpoint off on the
 * request connection, a check every `intervalMs` (on the injected timers) runs a PASSIVE checkpoint
 * when the log was written since the last one:
 * - a small backlog (under {@link WORKER_FRAMES} frames), or a burst, is checkpointed on the
 *   connection itself (a millisecond or two for a small one); being the writer's own, that pass
 *   backfills every frame, and the next write starts the log over from its beginning;
 * - once {@link WORKER_AFTER_PASSES} passes in a row found more (sustained writes), later passes
 *   run on a second connection in a worker thread (about 10 MB of memory while it is open) while
 *   requests go on writing (a PASSIVE checkpoint takes no writer lock). Readers search only the
 *   frames not yet backfilled, so they stay fast. Once the `-wal` file reaches half of
 *   `maxWalBytes`, the worker catches up (up to {@link CATCH_UP_ROUNDS} passes, until one found at
 *   most {@link TAIL_FRAMES} new frames) and the connection then checkpoints the few frames written
 *   meanwhile, so the log starts over;
 * - the worker closes again after {@link WORKER_IDLE_PASSES} small passes in a row or
 *   {@link WORKER_IDLE_TICKS} checks without writes;
 * - a `-wal` file over `maxWalBytes` (a reader in another process kept the log from starting over)
 *   is truncated with a TRUNCATE checkpoint attempted without waiting for readers (busy timeout 0);
 *   while a reader is still busy it truncates nothing, and it is retried at the next check.
 * A worker thread that cannot be opened is not tried again: the passes stay on the connection.
 * `stop()` ends the timer and the worker and truncates the log, so a stopped gateway leaves its
 * writes in the database file.
 */
export interface WalCheckpoints {
  /** Resolves once no pass is running (a test waits on it after moving its clock). */
  settled(): Promise<void>;
  /**
   * Passes so far: all, those whose bulk the worker did, and TRUNCATE checkpoints that truncated
   * the log (over the limit, at stop; not those a busy reader held off); and whether the worker
   * thread is open now.
   */
  stats(): {
    readonly passes: number;
    readonly workerPasses: number;
    readonly truncations: number;
    readonly worker: boolean;
  };
  /** Stops the checks and the worker, then checkpoints everything and truncates the log. */
  stop(): Promise<void>;
}

export const CHECKPOINT_INTERVAL_MS = 1000;
export const MAX_WAL_BYTES = 64 * 1024 * 1024;
/**
 * A pass that found this many frames (1 MB of 4 KB pages, a quarter of SQLite's own auto-checkpoint)
 * moves the bulk of later passes to the worker.
 */
export const WORKER_FRAMES = 256;
/** The worker opens at the pass after this many passes in a row found WORKER_FRAMES or more (sustained writes, not a burst). */
export const WORKER_AFTER_PASSES = 3;
/** A restart's catch-up: at most this many worker passes, until one found at most TAIL_FRAMES new frames. */
export const CATCH_UP_ROUNDS = 4;
export const TAIL_FRAMES = 64;
/** The worker closes after this many passes in a row that found fewer than WORKER_FRAMES ÷ 4 frames. */
export const WORKER_IDLE_PASSES = 10;
/** …or after this many checks in a row with nothing written. */
export const WORKER_IDLE_TICKS = 30;

/** How long a statement waits for another connection's lock before answering "database is locked". */
const BUSY_TIMEOUT_MS = 30_000;

/** Statements kept compiled; SQL with a varying number of parameters (batch inserts) cycles through. */
const STATEMENT_CACHE = 256;

/**
 * Counts, per watched set of tables, the statements run that may write one of them (see
 * `SyncSql.watchStamp`): a statement is classified once, when compiled, and a counting one bumps
 * the counts of its sets before it runs.
 */
class WriteWatch {
  readonly #sets: Map<string, { readonly tables: readonly string[]; count: number }>;
  constructor(sets: Readonly<Record<string, readonly string[]>>) {
    this.#sets = new Map(Object.entries(sets).map(([name, tables]) => [name, { tables, count: 0 }]));
  }

  /** Statements run so far that may write a table of set `name`. */
  count(name: string): number {
    const set = this.#sets.get(name);
    if (!set) throw new Error(`no watched set ${JSON.stringify(name)}`);
    return set.count;
  }

  /** `stmt` as compiled from `sql`, counting its runs when it may write a watched table. */
  wrap(sql: string, stmt: Statement): Statement {
    // SQLite's names are case-insensitive (`UPDATE ACCOUNTS` writes `accounts`): the SQL is
    // lower-cased once, here, where the statement is compiled (the watched names are lower case).
    const lower = sql.toLowerCase();
    const head = lower.trimStart().slice(0, 6);
    if (head === "select" || head === "pragma") return stmt;
    const hit = [...this.#sets.values()].filter((set) => set.tables.some((t) => lower.includes(t)));
    if (hit.length === 0) return stmt;
    const counted =
      <A extends unknown[], R>(fn: (...a: A) => R) =>
      (...a: A): R => {
        for (const set of hit) set.count++;
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
  // A failed COMMIT (a deferred foreign-key check, a full disk) leaves SQLite's transaction open:
  // rolled back like a throwing `fn`, or every later BEGIN on the connection would fail.
  const transaction = <T>(fn: () => T): T => {
    begin();
    try {
      const out = fn();
      commit();
      return out;
    } catch (e) {
      if (db.inTransaction) rollback();
      throw e;
    }
  };
  return {
    // An array binds its items to the `?` placeholders in order (as the Kysely driver passes them).
    all: (sql, params) => prepare(sql).all(params as unknown as Params[0]) as Record<string, unknown>[],
    run: (sql, params) => prepare(sql).run(params as unknown as Params[0]).changes,
    immediate<T>(fn: () => T, opts?: { readonly bulk?: boolean }): T {
      if (!opts?.bulk) return transaction(fn);
      // A statement that may fail after changing rows (a multi-row insert, a trigger) keeps a
      // statement journal of the pages it changes; past 64 KiB (a 50-row request-log insert, with
      // its 8 indexes and 2 triggers) SQLite moves that journal to a temporary file, written page
      // by page, until the transaction ends. With `temp_store` MEMORY while the transaction
      // begins it stays in memory (SQLite reads the setting at BEGIN; the pragma acts when
      // compiled, hence `exec`). Only around such a transaction: the connection's other
      // statements keep spilling large sorts and temporary tables to files, not to memory.
      db.exec("PRAGMA temp_store = MEMORY");
      try {
        return transaction(fn);
      } finally {
        db.exec("PRAGMA temp_store = DEFAULT");
      }
    },
    watchStamp: (set) => {
      const v = prepare("PRAGMA data_version").values()[0]?.[0];
      return `${watch.count(set)}:${v}`;
    },
  };
}

/**
 * Opens `path` (or `:memory:`) with WAL, a 30 s busy timeout and foreign keys on. `wal: false`
 * keeps a rollback journal instead (a file about to be moved, like a backup being written, must
 * not leave -wal/-shm files behind). `watch` names sets of tables whose writes
 * `sync.watchStamp(set)` follows.
 */
export function openSqlite(
  path: string,
  opts: { wal?: boolean; watch?: Readonly<Record<string, readonly string[]>> } = {},
): SqliteHandle {
  const db = new Database(path, { create: true, strict: false });
  // The busy timeout first: switching to WAL takes a lock another process may hold right now.
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (path !== ":memory:") db.exec(`PRAGMA journal_mode = ${opts.wal === false ? "DELETE" : "WAL"}`);
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA foreign_keys = ON");
  const cached = new Map<string, Statement>();
  const watch = new WriteWatch(opts.watch ?? {});
  const hasWal = path !== ":memory:" && opts.wal !== false;
  return {
    dialect: new BunSqliteDialect({ database: cachingDatabase(db, cached, watch) }),
    sync: syncSql(db, cached, watch),
    inTransaction: () => db.inTransaction,
    checkpoints: (timers, copts) => (hasWal ? walCheckpoints(db, path, timers, copts) : NO_CHECKPOINTS),
    close: () => {
      for (const stmt of cached.values()) stmt.finalize();
      cached.clear();
      db.close(false);
    },
  };
}

/** Checkpoints of a store that has none to take (PostgreSQL, SQLite without a write-ahead log). */
export const NO_CHECKPOINTS: WalCheckpoints = {
  settled: async () => {},
  stats: () => ({ passes: 0, workerPasses: 0, truncations: 0, worker: false }),
  stop: async () => {},
};

/** `PRAGMA wal_checkpoint`'s answer: busy (1 when it could not finish), frames in the log, frames backfilled. */
type CheckpointResult = readonly [busy: number, log: number, backfilled: number];

/**
 * The worker thread's code: one connection to `path`, a PASSIVE checkpoint per message. Inline (a
 * blob URL) so that a `bun build --compile` binary needs no extra file for it.
 */
const WORKER_SOURCE = `
import { Database } from "bun:sqlite";
let db;
self.onmessage = ({ data }) => {
  try {
    if (data.op === "close") {
      db?.close(false);
      db = undefined;
      postMessage({ id: data.id, result: null });
      return;
    }
    if (!db) {
      db = new Database(data.path, { create: false });
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA synchronous = NORMAL");
    }
    // Up to data.rounds passes, until a pass found at most data.tail frames written during the one before.
    let result;
    for (let i = 0; i < data.rounds; i++) {
      const before = result ? result[1] : -1;
      result = db.query("PRAGMA wal_checkpoint(PASSIVE)").values()[0];
      if (before >= 0 && result[1] >= before && result[1] - before <= data.tail) break;
    }
    postMessage({ id: data.id, result });
  } catch (e) {
    postMessage({ id: data.id, error: String(e && e.message ? e.message : e) });
  }
};
`;

/** A worker thread with its own connection to `path`, answering one request at a time. */
class CheckpointWorker implements CheckpointPasses {
  readonly #worker: Worker;
  /** The code's blob URL, revoked when the worker closes (the thread loads it after `new Worker` returns). */
  readonly #url: string;
  readonly #pending = new Map<
    number,
    { resolve: (r: CheckpointResult | null) => void; reject: (e: Error) => void }
  >();
  #next = 0;
  #failed: Error | null = null;

  constructor(private readonly path: string) {
    this.#url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(this.#url);
    // A background helper: it does not keep the process alive.
    (this.#worker as { unref?: () => void }).unref?.();
    this.#worker.onmessage = ({
      data,
    }: MessageEvent<{ id: number; result?: CheckpointResult | null; error?: string }>) => {
      const p = this.#pending.get(data.id);
      this.#pending.delete(data.id);
      if (data.error !== undefined) p?.reject(new Error(`WAL checkpoint worker: ${data.error}`));
      else p?.resolve(data.result ?? null);
    };
    this.#worker.onerror = (ev: ErrorEvent) => this.#fail(new Error(`WAL checkpoint worker: ${ev.message}`));
  }

  #fail(e: Error): void {
    this.#failed = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  #ask(
    msg: { op: "passive"; rounds: number; tail: number } | { op: "close" },
  ): Promise<CheckpointResult | null> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, path: this.path, ...msg });
    });
  }

  /**
   * PASSIVE checkpoints: one, or up to `rounds` until the frames written during the previous one
   * were at most `tail` (catching up with the writer); the last one's answer.
   */
  passive(rounds: number, tail: number): Promise<CheckpointResult> {
    return this.#ask({ op: "passive", rounds, tail }) as Promise<CheckpointResult>;
  }

  /** Closes the worker's connection, then the thread. */
  async close(): Promise<void> {
    try {
      await this.#ask({ op: "close" });
    } catch {
      // A failed worker has no connection to close.
    }
    this.#worker.terminate();
    URL.revokeObjectURL(this.#url);
  }
}

/**
 * The backlog of a write-ahead log: its frames not yet copied into the database, read from the
 * wal-index header at the start of the `-shm` file (https://www.sqlite.org/walformat.html: the
 * header's version 3007000 at byte 0, `mxFrame` at byte 16, then after the header's two copies the
 * checkpoint info's `nBackfill` at byte 96; native byte order). Read without SQLite's locks, so it
 * is a hint for choosing where a pass runs; null when the file does not have that shape.
 */
function walBacklog(shmPath: string): () => number | null {
  const buf = new Uint8Array(100);
  const view = new DataView(buf.buffer);
  const le = endianness() === "LE";
  return () => {
    let fd: number;
    try {
      fd = openSync(shmPath, "r");
    } catch {
      return null;
    }
    try {
      if (readSync(fd, buf, 0, 100, 0) < 100 || view.getUint32(0, le) !== 3007000) return null;
    } finally {
      closeSync(fd);
    }
    const mxFrame = view.getUint32(16, le);
    const backfilled = view.getUint32(96, le);
    return mxFrame >= backfilled ? mxFrame - backfilled : null;
  };
}

function walCheckpoints(
  db: Database,
  path: string,
  timers: CheckpointTimers,
  opts: CheckpointOptions = {},
): WalCheckpoints {
  const intervalMs = opts.intervalMs ?? CHECKPOINT_INTERVAL_MS;
  const maxWalBytes = opts.maxWalBytes ?? MAX_WAL_BYTES;
  db.exec("PRAGMA wal_autocheckpoint = 0");
  const wal = `${path}-wal`;
  const walBytes = () => statSync(wal, { throwIfNoEntry: false })?.size ?? 0;
  const backlog = walBacklog(`${path}-shm`);
  /** Without a readable wal-index: whether the log was written (appended, or started over) since the last check. */
  let seen = "";
  const written = () => {
    const st = statSync(wal, { throwIfNoEntry: false });
    const stamp = st ? `${st.size}:${st.mtimeMs}` : "";
    const changed = stamp !== seen;
    seen = stamp;
    return changed;
  };
  const stats = { passes: 0, workerPasses: 0, truncations: 0 };
  /** A TRUNCATE checkpoint that a busy reader held off: retried at the next check. */
  let truncateAgain = false;
  /**
   * A checkpoint on the request connection; TRUNCATE (attempted without waiting for readers) when
   * the file is over the limit.
   */
  const own = (mode: "PASSIVE" | "TRUNCATE" = walBytes() > maxWalBytes ? "TRUNCATE" : "PASSIVE") => {
    if (mode === "PASSIVE") {
      db.query("PRAGMA wal_checkpoint(PASSIVE)").values();
      return;
    }
    db.exec("PRAGMA busy_timeout = 0");
    try {
      // [busy, log frames, checkpointed frames]: busy = 1 when a reader kept the log from being truncated.
      const busy = Number(db.query("PRAGMA wal_checkpoint(TRUNCATE)").values()[0]?.[0] ?? 1) !== 0;
      truncateAgain = busy;
      if (!busy) stats.truncations++;
    } finally {
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  };
  const openWorker = opts.openWorker ?? ((p: string) => new CheckpointWorker(p));
  let worker: CheckpointPasses | null = null;
  /** The worker could not be opened: the passes stay on the connection from then on. */
  let workerFailed = false;
  /** The last worker's closing (awaited by `stop()`). */
  let closing: Promise<void> = Promise.resolve();
  let smallPasses = 0;
  let largePasses = 0;
  let idleTicks = 0;
  let pass: Promise<void> | null = null;
  let stopped = false;
  let timer: ReturnType<CheckpointTimers["setTimeout"]> | undefined;

  const report = (e: unknown) => opts.onError?.(e instanceof Error ? e : new Error(String(e)));
  const closeWorker = () => {
    const w = worker;
    worker = null;
    smallPasses = 0;
    largePasses = 0;
    if (w) closing = w.close().catch(report);
    return closing;
  };

  const runPass = async (frames: number) => {
    stats.passes++;
    // A burst (one or two large backlogs) stays on this thread: the worker costs about 10 MB.
    largePasses = frames >= WORKER_FRAMES ? largePasses + 1 : 0;
    if (!worker && (workerFailed || largePasses <= WORKER_AFTER_PASSES)) {
      own();
      return;
    }
    // Big enough to start over: the worker catches up first, so the writer's own pass is short.
    const restart = walBytes() >= maxWalBytes / 2;
    try {
      if (!worker) {
        try {
          worker = openWorker(path);
        } catch (e) {
          workerFailed = true;
          throw e;
        }
      }
      await worker.passive(restart ? CATCH_UP_ROUNDS : 1, TAIL_FRAMES);
      stats.workerPasses++;
    } catch (e) {
      // The writer's own pass does the whole job this time.
      report(e);
      await closeWorker();
      if (!stopped && !db.inTransaction) own();
      return;
    }
    // The frames written while the worker ran; a Kysely transaction open now waits for the next check.
    if (restart && !stopped && !db.inTransaction) own();
    smallPasses = frames < WORKER_FRAMES / 4 ? smallPasses + 1 : 0;
    if (smallPasses >= WORKER_IDLE_PASSES) await closeWorker();
  };

  const tick = () => {
    timer = undefined;
    if (stopped) return;
    if (!pass && !db.inTransaction) {
      const frames = backlog() ?? (written() ? WORKER_FRAMES : 0);
      if (frames > 0) {
        idleTicks = 0;
        pass = runPass(frames)
          .catch(report)
          .finally(() => {
            pass = null;
          });
      } else if (truncateAgain && walBytes() > maxWalBytes) {
        try {
          own("TRUNCATE");
        } catch (e) {
          report(e);
        }
      } else if (worker && ++idleTicks >= WORKER_IDLE_TICKS) {
        void closeWorker();
      }
    }
    timer = timers.setTimeout(tick, intervalMs);
  };
  timer = timers.setTimeout(tick, intervalMs);

  return {
    settled: async () => {
      while (pass) await pass;
    },
    stats: () => ({ ...stats, worker: worker !== null }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      timers.clearTimeout(timer);
      while (pass) await pass;
      // Also waits for a worker an idle check began closing.
      await closeWorker();
      if (db.inTransaction) return;
      try {
        own("TRUNCATE");
      } catch (e) {
        report(e);
      }
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
