/**
 * The batched request-log writer: rows are queued in memory and written in one insert every
 * `requestLogFlushMs` (or as soon as a batch is full), so a response never waits for the store.
 * `stop()` writes whatever is queued, so a clean shutdown loses nothing.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Database, NewRequestLogRow } from "../store/schema.ts";
import { responseOwner } from "./owner.ts";

export interface WriterLog {
  error(obj: object, msg: string): void;
}

/** Rows per insert statement; SQLite caps bound parameters, 24 columns × 200 rows stays well below. */
const BATCH = 200;

export class RequestLogWriter {
  #queue: NewRequestLogRow[] = [];
  /** Rows taken from the queue whose insert has not finished yet. */
  #writing: NewRequestLogRow[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #stopped = false;
  #dropped = 0;
  readonly #written: ((rows: readonly NewRequestLogRow[]) => void)[] = [];
  readonly #added: ((row: NewRequestLogRow) => void)[] = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: WriterLog,
    private readonly flushMs: number,
  ) {}

  /** Queues one row; never waits. */
  add(row: NewRequestLogRow): void {
    for (const fn of this.#added) fn(row);
    this.#queue.push(row);
    if (this.#stopped || this.#queue.length >= BATCH) {
      void this.flush();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.flushMs);
  }

  /** Called with each row as it is queued (e.g. to settle the request's API-key reservation). */
  onAdded(fn: (row: NewRequestLogRow) => void): void {
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
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#flushing = this.#flushing.then(async () => {
      while (this.#queue.length > 0) {
        const rows = this.#queue.splice(0, BATCH);
        this.#writing = rows;
        try {
          await this.db.insertInto("request_logs").values(rows).execute();
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
    });
    return this.#flushing;
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
