/**
 * The batched request-log writer: rows are queued in memory and written in one transaction every
 * `requestLogFlushMs` (or as soon as a batch is full), so a response never waits for the store.
 * `stop()` writes whatever is queued, so a clean shutdown loses nothing.
 *
 * Each row is inserted with a statement compiled once per row shape (the set of columns it sets);
 * its response owner (for `previous_response_id` routing) goes to the small `response_owners`
 * table (a trigger), which this writer prunes after the TTL: the cost of a row does not grow with
 * the log table. On SQLite (given the store's connection, `opts.sqlite`) a batch is written
 * synchronously: `BEGIN IMMEDIATE`, the cached statements, `COMMIT`, with no query building and no
 * promise per statement; on PostgreSQL the same statements go through a Kysely transaction.
 *
 * @module
 */
import type { CompiledQuery, Kysely } from "kysely";
import { type Clock, systemClock, type TimerHandle } from "../core/clock.ts";
import type { Database, NewRequestLogRow } from "../store/schema.ts";
import type { SqliteExclusive } from "../store/sync-sql.ts";
import { responseOwner } from "./owner.ts";

export interface WriterLog {
  error(obj: object, msg: string): void;
}

/** Rows per insert statement; SQLite caps bound parameters, 24 columns × 200 rows stays well below. */
const BATCH = 200;

/** How long response owners are kept by default (`CODEX_LB_RESPONSE_OWNER_TTL_SECONDS`). */
export const RESPONSE_OWNER_TTL_MS = 24 * 3_600_000;

/** Expired response owners are deleted at most this often (in the logs' own time, `requested_at`). */
const PRUNE_EVERY_MS = 60_000;

/** Rows per multi-row insert statement (a run of rows is cut into these, largest first). */
const CHUNKS = [50, 10, 1] as const;

/** Whether `row` sets column `k` (an undefined value leaves it to its default). */
function sets(row: NewRequestLogRow, k: string): k is keyof NewRequestLogRow {
  return row[k as keyof NewRequestLogRow] !== undefined;
}

/** The columns a row sets, in its own key order (its "shape"). */
function columnsOf(row: NewRequestLogRow): (keyof NewRequestLogRow)[] {
  const out: (keyof NewRequestLogRow)[] = [];
  for (const k in row) if (sets(row, k)) out.push(k);
  return out;
}

/** Whether `row` sets exactly `columns`, in that order (the shape {@link columnsOf} gives). */
function hasColumns(row: NewRequestLogRow, columns: readonly (keyof NewRequestLogRow)[]): boolean {
  let n = 0;
  for (const k in row) {
    if (!sets(row, k)) continue;
    if (columns[n] !== k) return false;
    n++;
  }
  return n === columns.length;
}

export class RequestLogWriter {
  #queue: NewRequestLogRow[] = [];
  /** Rows taken from the queue whose insert has not finished yet. */
  #writing: NewRequestLogRow[] = [];
  #timer: TimerHandle | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #stopped = false;
  #dropped = 0;
  readonly #written: ((rows: readonly NewRequestLogRow[]) => void)[] = [];
  readonly #added: ((row: NewRequestLogRow) => unknown)[] = [];
  readonly #prepared = new Map<string, CompiledQuery>();
  /** The newest `requested_at` written, and when owners were last pruned (same time line). */
  #newest = Number.NEGATIVE_INFINITY;
  #prunedAt = Number.NEGATIVE_INFINITY;
  readonly #ownerTtlMs: number;
  /** SQLite: the store's connection, for synchronous batches (see the module comment). */
  readonly #sqlite: SqliteExclusive | null;
  readonly #timers: Pick<Clock, "setTimeout" | "clearTimeout">;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: WriterLog,
    private readonly flushMs: number,
    opts: {
      readonly ownerTtlMs?: number;
      readonly sqlite?: SqliteExclusive;
      /** The flush timer's (the gateway's clock; the real one by default). */
      readonly timers?: Pick<Clock, "setTimeout" | "clearTimeout">;
    } = {},
  ) {
    this.#ownerTtlMs = opts.ownerTtlMs ?? RESPONSE_OWNER_TTL_MS;
    this.#sqlite = opts.sqlite ?? null;
    this.#timers = opts.timers ?? systemClock;
  }

  /**
   * Queues one row; never waits. Returns what the row's {@link onAdded} handlers made durable at
   * once (a key's reservation settled with the row's usage), settling once that is committed
   * (undefined: nothing to wait for). The row itself is written with the next batch.
   */
  add(row: NewRequestLogRow): Promise<unknown> | undefined {
    let durable: Promise<unknown> | undefined;
    for (const fn of this.#added) {
      const p = fn(row);
      if (p instanceof Promise) durable = durable ? Promise.all([durable, p]) : p;
    }
    this.#queue.push(row);
    if (this.#stopped || this.#queue.length >= BATCH) {
      void this.flush();
      return durable;
    }
    this.#timer ??= this.#timers.setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.flushMs);
    return durable;
  }

  /**
   * Called with each row as it is queued (e.g. to settle the request's API-key reservation); a
   * promise it returns (never rejecting) settles once what it wrote is committed (see {@link add}).
   */
  onAdded(fn: (row: NewRequestLogRow) => unknown): void {
    this.#added.push(fn);
  }

  /** Called with each batch once it is in the store (e.g. to drop usage caches). */
  onWritten(fn: (rows: readonly NewRequestLogRow[]) => void): void {
    this.#written.push(fn);
  }

  /** Rows dropped because their write failed (since start). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Rows queued and not yet written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Writes everything queued so far (serialised with any flush already running). */
  flush(): Promise<void> {
    if (this.#timer) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#flushing = this.#flushing.then(async () => {
      while (this.#queue.length > 0) {
        const rows = this.#queue.splice(0, BATCH);
        this.#writing = rows;
        try {
          const sqlite = this.#sqlite;
          if (sqlite) {
            await sqlite.exclusive((s) =>
              s.immediate(() => this.#insert(rows, (q, params) => void s.run(q.sql, params)), {
                bulk: true,
              }),
            );
          } else {
            await this.db.transaction().execute(async (trx) => {
              const queries: CompiledQuery[] = [];
              this.#insert(rows, (q, parameters) => void queries.push({ ...q, parameters }));
              for (const q of queries) await trx.executeQuery(q);
            });
          }
          for (const fn of this.#written) fn(rows);
        } catch (e) {
          this.#dropped += rows.length;
          this.log.error(
            { err: e instanceof Error ? e.message : String(e), rows: rows.length },
            "request log write failed; rows dropped",
          );
        } finally {
          this.#writing = [];
        }
      }
      await this.#prune();
    });
    return this.#flushing;
  }

  /**
   * Inserts `rows` in order (`exec` runs each statement): runs of rows setting the same columns go
   * in multi-row statements of {@link CHUNKS} rows, each compiled once per shape (no per-batch
   * query building).
   */
  #insert(
    rows: readonly NewRequestLogRow[],
    exec: (query: CompiledQuery, params: readonly unknown[]) => void,
  ): void {
    let i = 0;
    while (i < rows.length) {
      const columns = columnsOf(rows[i]!);
      const shape = columns.join(",");
      let end = i + 1;
      while (end < rows.length && hasColumns(rows[end]!, columns)) end++;
      while (i < end) {
        const size = CHUNKS.find((c) => c <= end - i)!;
        const query = this.#preparedFor(shape, columns, size);
        const params: unknown[] = new Array(size * columns.length);
        let k = 0;
        for (let r = i; r < i + size; r++) {
          const row = rows[r]!;
          for (const c of columns) params[k++] = row[c];
          if (row.requested_at > this.#newest) this.#newest = row.requested_at;
        }
        exec(query, params);
        i += size;
      }
    }
  }

  /** The insert of `size` rows setting `columns` (compiled on first use). */
  #preparedFor(shape: string, columns: readonly (keyof NewRequestLogRow)[], size: number): CompiledQuery {
    const key = `${size}:${shape}`;
    let q = this.#prepared.get(key);
    if (!q) {
      const sample: Record<string, unknown> = {};
      // Placeholder values: only the SQL text and the parameter order are kept.
      for (const c of columns) sample[c] = 0;
      q = this.db
        .insertInto("request_logs")
        .values(Array.from({ length: size }, () => sample as NewRequestLogRow))
        .compile();
      // Rows are built by the gateway's own code: a handful of shapes. Bounded all the same.
      if (this.#prepared.size >= 64) this.#prepared.clear();
      this.#prepared.set(key, q);
    }
    return q;
  }

  /** Deletes response owners older than the TTL (before the newest row written), at most once a minute. */
  async #prune(): Promise<void> {
    const now = this.#newest;
    if (now === Number.NEGATIVE_INFINITY || now - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    try {
      const q = this.db
        .deleteFrom("response_owners")
        .where("created_at", "<", now - this.#ownerTtlMs)
        .compile();
      const sqlite = this.#sqlite;
      if (sqlite) await sqlite.exclusive((s) => s.run(q.sql, q.parameters));
      else await this.db.executeQuery(q);
    } catch (e) {
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, "response owner pruning failed");
    }
  }

  /**
   * The account that produced upstream response `responseId`, from the rows still queued (a client
   * may continue a conversation before its first answer's row is written) and then from the store.
   */
  async responseOwner(responseId: string): Promise<string | null> {
    for (const rows of [this.#queue, this.#writing]) {
      for (let i = rows.length - 1; i >= 0; i--) {
        const r = rows[i]!;
        if (r.response_id === responseId && r.account_id) return r.account_id;
      }
    }
    return responseOwner(this.db, responseId);
  }

  /** Flushes and writes later rows at once (used on shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.flush();
  }
}
