/**
 * API-key limit reservations. Before a keyed request is forwarded, an estimate of its usage (input
 * size, `max_output_tokens`) is reserved in the store, in one transaction that first locks the key's
 * row and sums the key's logged usage plus every reservation in the window; when the request is over
 * the reservation is settled with the real usage, and it is deleted once the request's log row is
 * written (then the hour buckets count it). So:
 *
 * - a request is refused (429 `rate_limit_exceeded`) when the key's limit is reached counting the
 *   reservations in flight, or when its estimate would not fit beside other requests in flight: a
 *   burst overshoots a limit by at most one request's worth (the one admitted alone near the limit);
 * - reservations are rows, not memory: a process killed with `kill -9` before it wrote the log row
 *   still counts the request (settled usage, or the estimate when it died mid-request) until the
 *   window ends — usage is never under-counted, at worst over-counted by what was in flight;
 * - the lock is a row update on `api_keys`, a write lock on SQLite and a row lock on PostgreSQL, so
 *   the same rule holds across replicas sharing one database.
 *
 * @module
 */
import { CompiledQuery, type ExpressionBuilder, type Kysely, sql } from "kysely";
import type { Clock, TimerHandle } from "../../core/clock.ts";
import { GatewayError } from "../../core/errors.ts";
import { dialectOf } from "../../store/migrations/ddl.ts";
import type { Database, NewRequestLogRow } from "../../store/schema.ts";
import type { SqliteExclusive, SyncSql } from "../../store/sync-sql.ts";
import {
  addUsage,
  type LimitSpec,
  type LimitType,
  subtractUsage,
  type Usage,
  usageOfRows,
  usageOfTotals,
  usageQuery,
  usageTotalsQuery,
  valueFor,
  windowBounds,
  zeroUsage,
} from "./limits.ts";
import { precompiled, precompiledText, type SqlText } from "./precompiled.ts";
import { costUsd } from "./pricing.ts";

/** Output tokens assumed for a request that does not say (`max_output_tokens` absent). */
export const DEFAULT_OUTPUT_ESTIMATE = 4096;
/**
 * An unsettled reservation older than this is no longer "in flight" (its process died, or the
 * request outlived any stream timeout): it still counts its estimate, but no longer makes other
 * requests wait.
 */
const IN_FLIGHT_MS = 3_600_000;
/** Reservations (key, time and id) remembered between a log row queued and written (see `LimitReservations`). */
const QUEUED_IDS = 100_000;
/**
 * Key windows whose logged usage, and whose held reservations, the SQLite group commit keeps at
 * most, each (then it starts afresh).
 */
const LOGGED_KEPT = 10_000;
/** Reservations older than the longest window can count for nothing; they are pruned. */
const MAX_WINDOW_MS = 30 * 24 * 3_600_000;

export interface UsageFigures {
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: number;
}

/**
 * The usage a request may reach: its body's size in bytes / 4 as input tokens (an over-estimate of
 * a tokenizer's count), plus `maxOutputTokens` (or {@link DEFAULT_OUTPUT_ESTIMATE}) output tokens.
 */
export function estimateUsage(
  model: string,
  bodyBytes: number,
  maxOutputTokens: number | null,
): UsageFigures {
  const inputTokens = Math.ceil(Math.max(0, bodyBytes) / 4);
  const outputTokens =
    maxOutputTokens !== null && Number.isFinite(maxOutputTokens) && maxOutputTokens > 0
      ? Math.ceil(maxOutputTokens)
      : DEFAULT_OUTPUT_ESTIMATE;
  return {
    inputTokens,
    cachedInputTokens: 0,
    outputTokens,
    costUsd: costUsd(model, { inputTokens, cachedInputTokens: 0, outputTokens }) ?? 0,
  };
}

function asUsage(f: UsageFigures, requests = 1): Usage {
  return {
    requests,
    inputTokens: f.inputTokens,
    cachedInputTokens: f.cachedInputTokens,
    outputTokens: f.outputTokens,
    totalTokens: f.inputTokens + f.outputTokens,
    costUsd: f.costUsd,
  };
}

interface Held {
  /** Settled reservations (real usage) and unsettled ones (estimates) together. */
  readonly all: Usage;
  /** Unsettled reservations: requests in flight. */
  readonly inFlight: number;
}

/** The query summing a key's reservations since `since` (compiled once per dialect). */
function heldQuery(db: Kysely<Database>, apiKeyId: string, since: number, inFlightSince: number): SqlText {
  return precompiledText(db, "heldSince", [apiKeyId, since, inFlightSince], (a) =>
    db
      .selectFrom("api_key_reservations")
      .select([
        sql<number>`count(*)`.as("n"),
        sql<number>`coalesce(sum(case when settled = 0 and created_at >= ${a[2]} then 1 else 0 end), 0)`.as(
          "in_flight",
        ),
        sql<number>`coalesce(sum(input_tokens), 0)`.as("input"),
        sql<number>`coalesce(sum(cached_input_tokens), 0)`.as("cached"),
        sql<number>`coalesce(sum(output_tokens), 0)`.as("output"),
        sql<number>`coalesce(sum(cost_usd), 0)`.as("cost"),
        sql<number | null>`min(case when settled = 0 and created_at >= ${a[2]} then created_at end)`.as(
          "oldest_in_flight",
        ),
      ])
      .where("api_key_id", "=", a[0] as string)
      .where("created_at", ">=", a[1] as number),
  );
}

/** Plain SQL as a Kysely query. */
function asQuery(q: SqlText): CompiledQuery {
  return CompiledQuery.raw(q.sql, [...q.parameters]);
}

function heldOfRow(r: Record<string, unknown> | undefined): Held {
  const figures = {
    inputTokens: Number(r?.input ?? 0),
    cachedInputTokens: Number(r?.cached ?? 0),
    outputTokens: Number(r?.output ?? 0),
    costUsd: Number(r?.cost ?? 0),
  };
  return { all: asUsage(figures, Number(r?.n ?? 0)), inFlight: Number(r?.in_flight ?? 0) };
}

function refusal(l: LimitSpec, used: number, resetsAt: number, now: number, why: string): GatewayError {
  const seconds = Math.max(1, Math.ceil((resetsAt - now) / 1000));
  return new GatewayError(
    "rate_limit_exceeded",
    `API key ${l.limitWindow} ${l.limitType} limit of ${l.maxValue} ${why} (${Number(used.toFixed(6))} used or reserved); usage resets at ${new Date(resetsAt).toISOString()}`,
    { resets_at: Math.ceil(resetsAt / 1000), resets_in_seconds: seconds },
    { "retry-after": String(seconds) },
  );
}

type KeyLimits = { readonly id: string; readonly createdAt: number; readonly limits: readonly LimitSpec[] };
type ReserveRequest = {
  readonly id: string;
  readonly requestId: string;
  readonly model: string;
  /** Already a {@link Usage} (the hold converts it once): used as it is. */
  readonly estimate: Usage;
};
/** A hold queued for the group commit (see {@link GroupCommit.reserve}). */
interface HoldOp extends ReserveRequest {
  readonly key: KeyLimits;
  /** The hold's time (the reservation's `created_at`). */
  readonly createdAt: number;
  /** Set by the batch when the hold is refused (429). */
  refused?: GatewayError;
}
interface WindowFigures {
  readonly logged: Usage;
  readonly held: Held;
  readonly resetsAt: number;
}

/** Throws 429 when `est` does not fit limit `l`, whose window's figures are `w`. */
function judge(l: LimitSpec, w: WindowFigures, est: Usage, now: number): void {
  const type: LimitType = l.limitType;
  const used = valueFor(type, w.logged) + valueFor(type, w.held.all);
  if (used >= l.maxValue) throw refusal(l, used, w.resetsAt, now, "reached");
  if (w.held.inFlight > 0 && used + valueFor(type, est) > l.maxValue)
    throw refusal(l, used, w.resetsAt, now, "would be exceeded by the requests in flight");
}

/**
 * Throws 429 when `est` does not fit one of the key's limits (from the `from`th on);
 * `figures(start, resetsAt)` reads a window's logged usage and reservations, once per distinct
 * window (`read`: the windows read so far, kept only when a later limit may share one).
 */
function check(
  key: KeyLimits,
  est: Usage,
  now: number,
  figures: (start: number, resetsAt: number) => WindowFigures | Promise<WindowFigures>,
  from = 0,
  read: Map<string, WindowFigures> | null = null,
): void | Promise<void> {
  const limits = key.limits;
  for (let i = from; i < limits.length; i++) {
    const l = limits[i]!;
    const known = read?.get(l.limitWindow);
    if (known) {
      judge(l, known, est, now);
      continue;
    }
    const { start, resetsAt } = windowBounds(key.createdAt, l.limitWindow, now);
    const w = figures(start, resetsAt);
    if (i + 1 < limits.length) read ??= new Map();
    if (w instanceof Promise) return checkAfter(w, key, est, now, figures, i, read);
    read?.set(l.limitWindow, w);
    judge(l, w, est, now);
  }
}

/** {@link check} once the `i`th limit's figures `w` are read (PostgreSQL). */
function checkAfter(
  w: Promise<WindowFigures>,
  key: KeyLimits,
  est: Usage,
  now: number,
  figures: (start: number, resetsAt: number) => WindowFigures | Promise<WindowFigures>,
  i: number,
  read: Map<string, WindowFigures> | null,
): Promise<void> {
  const l = key.limits[i]!;
  return w.then((got) => {
    read?.set(l.limitWindow, got);
    judge(l, got, est, now);
    return check(key, est, now, figures, i + 1, read);
  });
}

function reservationValues(key: KeyLimits, req: ReserveRequest, now: number): unknown[] {
  return [
    req.id,
    key.id,
    req.requestId,
    req.model,
    now,
    req.estimate.inputTokens,
    req.estimate.cachedInputTokens,
    req.estimate.outputTokens,
    req.estimate.costUsd,
  ];
}

function insertReservationQuery(db: Kysely<Database>, values: readonly unknown[]): SqlText {
  return precompiledText(db, "insertReservation", values, insertReservationBuild);
}

function insertReservationBuild(a: readonly unknown[], db: Kysely<Database>) {
  return db.insertInto("api_key_reservations").values({
    id: a[0] as string,
    api_key_id: a[1] as string,
    request_id: a[2] as string,
    model: a[3] as string,
    created_at: a[4] as number,
    settled: 0,
    input_tokens: a[5] as number,
    cached_input_tokens: a[6] as number,
    output_tokens: a[7] as number,
    cost_usd: a[8] as number,
  });
}

/**
 * Reserves `estimate` against the key's limits, or throws 429. Returns the reservation id (null
 * when the key has no limits: nothing to hold).
 *
 * With `sqlite` (the store's SQLite connection) the same statements run synchronously in one
 * `BEGIN IMMEDIATE` transaction: the write lock taken first decides this key's reservations one
 * after the other, as the lock on the key's row does on PostgreSQL.
 */
export async function reserve(
  db: Kysely<Database>,
  key: KeyLimits,
  req: ReserveRequest,
  now: number,
  sqlite?: SqliteExclusive,
): Promise<string | null> {
  if (key.limits.length === 0) return null;
  if (sqlite) {
    await sqlite.exclusive((s) => s.immediate(() => reserveIn(s, db, key, req, now)));
    return req.id;
  }
  const est = req.estimate;
  const inFlightSince = now - IN_FLIGHT_MS;
  return db.transaction().execute(async (trx) => {
    // Lock the key first: every reservation of this key is decided one after the other.
    await trx.executeQuery(
      precompiled(trx, "lockKey", [key.id], (a) =>
        trx
          .updateTable("api_keys")
          .set({ updated_at: sql`updated_at` })
          .where("id", "=", a[0] as string),
      ),
    );
    await check(key, est, now, async (start, resetsAt) => ({
      logged: usageOfRows(
        (await trx.executeQuery(asQuery(usageQuery(trx, key.id, start, resetsAt)))).rows as Record<
          string,
          unknown
        >[],
      ),
      held: heldOfRow(
        (await trx.executeQuery(asQuery(heldQuery(trx, key.id, start, inFlightSince)))).rows[0] as
          | Record<string, unknown>
          | undefined,
      ),
      resetsAt,
    }));
    await trx.executeQuery(asQuery(insertReservationQuery(trx, reservationValues(key, req, now))));
    return req.id;
  });
}

/**
 * {@link reserve}'s decision and insert on SQLite, synchronously, inside a `BEGIN IMMEDIATE`
 * transaction (the write lock taken first: this key's reservations are decided one after another).
 */
function reserveIn(
  s: SyncSql,
  db: Kysely<Database>,
  key: KeyLimits,
  req: ReserveRequest,
  now: number,
  batch?: BatchFigures,
): void {
  const inFlightSince = now - IN_FLIGHT_MS;
  const est = req.estimate;
  check(key, est, now, (start, resetsAt) => ({
    logged: loggedIn(s, db, key.id, start, resetsAt, batch),
    held: heldIn(s, db, key.id, start, inFlightSince, batch),
    resetsAt,
  }));
  const q = insertReservationQuery(db, reservationValues(key, req, now));
  s.run(q.sql, q.parameters);
  // Later holds add the new reservation to what was read instead of summing the table again.
  batch?.held.added(key.id, now, est);
}

/** The key's logged usage in the window `start`..`resetsAt` (as `batch` kept it, when it did). */
function loggedIn(
  s: SyncSql,
  db: Kysely<Database>,
  keyId: string,
  start: number,
  resetsAt: number,
  batch: BatchFigures | undefined,
): Usage {
  const k = `${keyId}\u0000${start}\u0000${resetsAt}`;
  let u = batch?.logged.get(k);
  if (!u) {
    const run = (q: SqlText) => s.all(q.sql, q.parameters);
    // Most windows hold one model: their sums come without the grouped query's sort.
    u =
      usageOfTotals(run(usageTotalsQuery(db, keyId, start, resetsAt))[0]) ??
      usageOfRows(run(usageQuery(db, keyId, start, resetsAt)));
    batch?.logged.set(k, u);
  }
  return u;
}

/** The key's reservations since `start`, in flight since `inFlightSince` (as `batch` kept them, when it did). */
function heldIn(
  s: SyncSql,
  db: Kysely<Database>,
  keyId: string,
  start: number,
  inFlightSince: number,
  batch: BatchFigures | undefined,
): Held {
  const known = batch?.held.get(keyId, start, inFlightSince);
  if (known) return known;
  const q = heldQuery(db, keyId, start, inFlightSince);
  const r = s.all(q.sql, q.parameters)[0];
  const h = heldOfRow(r);
  batch?.held.set(keyId, start, inFlightSince, h, r?.oldest_in_flight);
  return h;
}

/**
 * What the group commit has read, kept across batches while the connection's stamp of the logs,
 * the hour buckets and the reservations stays what its own last batch left (`SyncSql.watchStamp`;
 * any other write changes it, a log flush included): logged usage per key and window (the batches
 * write no log rows), and reservations held per key and window start, kept up to date with the
 * batches' own inserts and settles (the sum over the table grows with the requests in flight and
 * those whose log row is not written yet).
 */
interface BatchFigures {
  readonly logged: Map<string, Usage>;
  readonly held: HeldReservations;
}

/** The reservations held by one key since one window start, kept up to date in place. */
interface HeldEntry extends Held {
  all: Usage;
  inFlight: number;
  readonly start: number;
  /** The in-flight bound (`now - IN_FLIGHT_MS`) of the read. */
  readonly since: number;
  /** The oldest reservation counted in flight (Infinity: none). */
  oldest: number;
}

/**
 * Reservations held per key and window start as {@link heldQuery} read them, brought up to date
 * with each reservation the group commit inserts or settles, so a hold reads the table once per key
 * and window between two log flushes instead of summing every reservation each time. A key has a
 * few window starts (one per limit window): they are kept in a list.
 */
class HeldReservations {
  readonly #byKey = new Map<string, HeldEntry[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** What the key's reservations since `start` hold for in-flight bound `since`, when known. */
  get(keyId: string, start: number, since: number): Held | undefined {
    const windows = this.#byKey.get(keyId);
    if (!windows) return undefined;
    for (let i = 0; i < windows.length; i++) {
      const e = windows[i]!;
      // A later bound passing a reservation counted in flight (or an earlier bound) needs a new read.
      if (e.start === start) return e.since <= since && since <= e.oldest ? e : undefined;
    }
    return undefined;
  }

  set(keyId: string, start: number, since: number, held: Held, oldest: unknown): void {
    let windows = this.#byKey.get(keyId);
    if (!windows) {
      windows = [];
      this.#byKey.set(keyId, windows);
    }
    const e: HeldEntry = {
      all: held.all,
      inFlight: held.inFlight,
      start,
      since,
      oldest: oldest === null || oldest === undefined ? Infinity : Number(oldest),
    };
    const at = windows.findIndex((w) => w.start === start);
    if (at >= 0) windows[at] = e;
    else {
      windows.push(e);
      this.#size++;
    }
  }

  /** A reservation of `est` was inserted at `createdAt` (unsettled). */
  added(keyId: string, createdAt: number, est: Usage): void {
    const windows = this.#byKey.get(keyId);
    if (!windows) return;
    for (let i = 0; i < windows.length; i++) {
      const e = windows[i]!;
      if (createdAt < e.start) continue;
      const inFlight = createdAt >= e.since;
      e.all = addUsage(e.all, est);
      if (inFlight) {
        e.inFlight++;
        if (createdAt < e.oldest) e.oldest = createdAt;
      }
    }
  }

  /** An unsettled reservation inserted at `createdAt` with `est` now holds `real` instead. */
  settled(keyId: string, createdAt: number, est: Usage, real: Usage): void {
    const windows = this.#byKey.get(keyId);
    if (!windows) return;
    for (let i = 0; i < windows.length; i++) {
      const e = windows[i]!;
      if (createdAt < e.start) continue;
      e.all = addUsage(subtractUsage(e.all, est), real);
      if (createdAt >= e.since) e.inFlight--;
    }
  }

  /** Forgets the key's figures (they are read again). */
  forget(keyId: string): void {
    const windows = this.#byKey.get(keyId);
    if (!windows) return;
    this.#size -= windows.length;
    this.#byKey.delete(keyId);
  }

  clear(): void {
    this.#byKey.clear();
    this.#size = 0;
  }
}

/** What a settle changes in the sums held: reservation of `keyId` inserted at `createdAt`, `estimate` → `real`. */
interface SettleFigures {
  readonly keyId: string;
  readonly createdAt: number;
  readonly estimate: Usage;
  readonly real: Usage;
}

/** A settle queued for the group commit: its statement and figures, told how its batch ended. */
interface SettleWrite extends SettleFigures {
  readonly settleSql: SqlText;
  /** The batch ended: committed (null) or failed (the error). */
  ended(e: unknown): void;
}

/**
 * Group commit on SQLite: the reservations, settles and deletes asked for in one turn of the event
 * loop are written in one `BEGIN IMMEDIATE` transaction (a commit costs more than the statements),
 * in the order they were asked for. Each reservation is decided as if alone (it sees the ones
 * before it in the batch); a refused one writes nothing and does not touch the others. A
 * reservation is durable before its request goes on.
 *
 * A queued item is the caller's own object, not a closure or a promise of its own: holds and
 * deletes share their batch's one promise (a refused hold finds its refusal on itself), and a
 * settle is told how its batch ended (`SettleWrite.ended`).
 *
 * A settle may instead be its own batch at once ({@link settleNow}), when no other request of the
 * process holds a reservation: then none but a request arriving in this very turn could share its
 * batch, and one client at a time would wait a turn for nothing before it may see its answer's end.
 */
class GroupCommit {
  #holds: HoldOp[] = [];
  /** Deletes (their SQL: `"sql" in w`) and settles, in the order asked for. */
  #writes: (SqlText | SettleWrite)[] = [];
  /** What the holds and deletes of the batch being gathered wait for (made when one is queued). */
  #done: PromiseWithResolvers<void> | null = null;
  #scheduled = false;
  /**
   * Logged usage per key and window, and the reservations held (see {@link BatchFigures}), as read
   * while the watched tables had `#stamp` (the stamp the last batch left): summing a window's hour
   * buckets costs in proportion to its length (about 0.3 ms for 30 days of them), summing the
   * reservations in proportion to the requests in flight and those whose log row is not written yet.
   */
  readonly #logged = new Map<string, Usage>();
  readonly #held = new HeldReservations();
  #stamp: string | null = null;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly sqlite: SqliteExclusive,
  ) {}

  /**
   * Queues `h`; settles once its batch is committed (rejects when the batch failed). A refused
   * hold (the 429 of {@link reserve}) is committed with nothing written: its refusal is then in `h.refused`.
   */
  reserve(h: HoldOp): Promise<void> {
    this.#holds.push(h);
    return this.#waited();
  }

  /** Runs a write (a delete) in the next batch; settles once it is committed. */
  write(q: SqlText): Promise<void> {
    this.#writes.push(q);
    return this.#waited();
  }

  /** Runs a settle in the next batch; `w.ended` is told how the batch ended. */
  settle(w: SettleWrite): void {
    this.#writes.push(w);
    this.#schedule();
  }

  /**
   * Runs settle `w` as a batch of its own now, in the same transaction it would have in the next
   * batch, when no batch is gathering and the connection is free: true when it ran (committed, or
   * failed and `w.ended` was told so, synchronously); false when it did not run (nothing done:
   * queue it with {@link settle}). A committed settle is not told `ended`: it is over when this returns.
   */
  settleNow(w: SettleWrite): boolean {
    if (this.#scheduled || !this.sqlite.free()) return false;
    const run = { failed: false, error: undefined as unknown };
    // Free: runs before `exclusive` returns (its promise says nothing more; nothing waits on it).
    void this.sqlite.exclusive((s) => {
      try {
        this.#batch(s, [], [w]);
      } catch (e) {
        run.failed = true;
        run.error = e;
      }
    });
    if (!run.failed) return true;
    // Rolled back: what the batch added to the figures kept is not in the store.
    this.#stamp = null;
    w.ended(run.error);
    return true;
  }

  #waited(): Promise<void> {
    this.#schedule();
    this.#done ??= Promise.withResolvers<void>();
    return this.#done.promise;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#run());
  }

  #run(): void {
    this.#scheduled = false;
    const holds = this.#holds;
    const writes = this.#writes;
    const done = this.#done;
    this.#holds = [];
    this.#writes = [];
    this.#done = null;
    let batch: Promise<void>;
    try {
      batch = this.sqlite.exclusive((s) => this.#batch(s, holds, writes));
    } catch (e) {
      // Refused before running (a closed connection): the batch fails like one that threw.
      batch = Promise.reject(e);
    }
    // The holds and deletes sharing the batch's promise are told first: a settle's `ended` logs,
    // and nothing it does may keep them waiting.
    batch.then(
      () => {
        done?.resolve();
        for (const w of writes) if (!("sql" in w)) w.ended(null);
      },
      (e: unknown) => {
        // Rolled back: what this batch added to the figures kept is not in the store.
        this.#stamp = null;
        done?.reject(e);
        for (const w of writes) if (!("sql" in w)) w.ended(e);
      },
    );
  }

  /** One batch, on the connection: the writes, then the holds, in one transaction. */
  #batch(s: SyncSql, holds: readonly HoldOp[], writes: readonly (SqlText | SettleWrite)[]): void {
    s.immediate(() => {
      // Inside the write lock: no other connection commits until this batch has. What was
      // read is still right when nothing but the previous batch wrote since.
      const stamp = s.watchStamp("limits");
      if (stamp !== this.#stamp || this.#logged.size > LOGGED_KEPT || this.#held.size > LOGGED_KEPT) {
        this.#logged.clear();
        this.#held.clear();
      }
      for (const w of writes) {
        if ("sql" in w) {
          s.run(w.sql, w.parameters);
          this.#held.clear();
          continue;
        }
        const q = w.settleSql;
        if (s.run(q.sql, q.parameters) === 1) this.#held.settled(w.keyId, w.createdAt, w.estimate, w.real);
        else this.#held.forget(w.keyId);
      }
      const batch: BatchFigures = { logged: this.#logged, held: this.#held };
      for (const h of holds) {
        try {
          reserveIn(s, this.db, h.key, h, h.createdAt, batch);
        } catch (e) {
          // A refusal (429) is decided before anything is written; anything else fails the batch.
          if (e instanceof GatewayError) h.refused = e;
          else throw e;
        }
      }
      this.#stamp = s.watchStamp("limits");
    });
  }
}

/**
 * A reservation as the store finds it: by key, creation time and id (the primary key of the SQLite
 * table, which is ordered by key and time).
 */
export interface ReservationRef {
  readonly id: string;
  readonly keyId: string;
  readonly createdAt: number;
}

/** The reservation whose key, creation time and id are the arguments from `at` on (its primary key). */
function byRef(a: readonly unknown[], at: number) {
  return (eb: ExpressionBuilder<Database, "api_key_reservations">) =>
    eb.and([
      eb("api_key_id", "=", a[at] as string),
      eb("created_at", "=", a[at + 1] as number),
      eb("id", "=", a[at + 2] as string),
    ]);
}

function settleQuery(db: Kysely<Database>, ref: ReservationRef, usage: UsageFigures): SqlText {
  const args = [
    usage.inputTokens,
    usage.cachedInputTokens,
    usage.outputTokens,
    usage.costUsd,
    ref.keyId,
    ref.createdAt,
    ref.id,
  ];
  return precompiledText(db, "settleReservation", args, settleBuild);
}

function settleBuild(a: readonly unknown[], db: Kysely<Database>) {
  return db
    .updateTable("api_key_reservations")
    .set({
      settled: 1,
      input_tokens: a[0] as number,
      cached_input_tokens: a[1] as number,
      output_tokens: a[2] as number,
      cost_usd: a[3] as number,
    })
    .where(byRef(a, 4));
}

function releaseQuery(db: Kysely<Database>, ref: ReservationRef): SqlText {
  return precompiledText(db, "releaseReservation", [ref.keyId, ref.createdAt, ref.id], releaseBuild);
}

function releaseBuild(a: readonly unknown[], db: Kysely<Database>) {
  return db.deleteFrom("api_key_reservations").where(byRef(a, 0));
}

/** Replaces a reservation's estimate with the request's real usage (zero when it used nothing). */
async function settle(db: Kysely<Database>, ref: ReservationRef, usage: UsageFigures): Promise<void> {
  await db.executeQuery(asQuery(settleQuery(db, ref, usage)));
}

/**
 * PostgreSQL: cancels the settle statements (SQL text `text`, whichever replica runs them) of this
 * database that have run longer than `ms`; the number cancelled.
 */
async function cancelStuckSettles(db: Kysely<Database>, text: string, ms: number): Promise<number> {
  const { rows } = await sql`select pg_cancel_backend(pid) from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and state = 'active'
      and query = ${text} and query_start < clock_timestamp() - ${ms} * interval '1 millisecond'`.execute(db);
  return rows.length;
}

/** How long a client's end waits for its settle, and the timers that count it. */
export interface SettleWaitOptions {
  /** `CODEX_LB_SETTLE_WAIT_MS`. */
  readonly ms: number;
  readonly clock: Pick<Clock, "now" | "setTimeout">;
}

/** A settle a client's end waits for. */
interface PendingSettle {
  /** When the wait began (set by {@link SettleWait.start}). */
  since: number;
  /** The reservation's id. */
  readonly id: string;
  /** Ends the client's wait. */
  release(): void;
}

/**
 * The bound on how long a client's end waits for its settle (`CODEX_LB_SETTLE_WAIT_MS`). The settles
 * waited on are kept in the order they started; one timer, armed only while some are pending, fires
 * at the oldest one's deadline and releases every one past the bound (logged), then is armed again
 * for the next. No timer per request: a settle commits in well under a millisecond, long before the
 * timer armed for an earlier one fires. With `stuck` (PostgreSQL), released settles are kept until
 * they end; once the oldest has outlived twice the bound, the same timer asks `stuck(2 * ms)` to
 * cancel the settle statements that have run that long, then again each bound while it lasts.
 */
class SettleWait {
  readonly #pending = new Set<PendingSettle>();
  /** Released settles still running (only with `stuck`). */
  readonly #late = new Set<PendingSettle>();
  #timer: TimerHandle | null = null;

  constructor(
    private readonly opts: SettleWaitOptions,
    private readonly log: ReservationLog,
    private readonly stuck?: (olderThanMs: number) => Promise<number>,
  ) {}

  /**
   * `p`'s settle has started: `p` is released when {@link ended} is called, or once the bound has
   * passed, whichever comes first.
   */
  start(p: PendingSettle): void {
    p.since = this.opts.clock.now();
    this.#pending.add(p);
    this.#timer ??= this.opts.clock.setTimeout(() => this.#expire(), this.opts.ms);
  }

  /**
   * `p`'s settle has ended (true: committed, false: failed and logged): released now unless the
   * bound released it; a settle committed after that is logged.
   */
  ended(p: PendingSettle, ok: boolean): void {
    if (this.#pending.delete(p)) {
      p.release();
      return;
    }
    this.#late.delete(p);
    if (ok)
      this.log.info(
        { reservationId: p.id, waitedMs: this.opts.clock.now() - p.since },
        "a late settle of an API-key reservation committed",
      );
  }

  #expire(): void {
    this.#timer = null;
    const { ms, clock } = this.opts;
    const now = clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const p of this.#pending) {
      const left = p.since + ms - now;
      if (left > 0) {
        next = left;
        break;
      }
      this.#pending.delete(p);
      if (this.stuck) this.#late.add(p);
      this.log.warn(
        { reservationId: p.id, waitedMs: now - p.since },
        "settling an API-key reservation takes longer than CODEX_LB_SETTLE_WAIT_MS; the answer ends without waiting, the settle goes on",
      );
      p.release();
    }
    const oldestLate = this.#late.values().next().value;
    if (oldestLate && this.stuck) {
      const left = oldestLate.since + 2 * ms - now;
      if (left <= 0) {
        this.stuck(2 * ms).then(
          (cancelled) => {
            if (cancelled > 0)
              this.log.info(
                { cancelled },
                "cancelled settle statements running longer than twice CODEX_LB_SETTLE_WAIT_MS",
              );
          },
          (e: unknown) =>
            this.log.warn(
              { err: e instanceof Error ? e.message : String(e) },
              "cancelling stuck settles failed",
            ),
        );
        next = Math.min(next, ms);
      } else next = Math.min(next, left);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#timer = clock.setTimeout(() => this.#expire(), next);
  }
}

/** Drops reservations too old to count in any window. */
export async function pruneReservations(db: Kysely<Database>, now: number): Promise<void> {
  await db
    .deleteFrom("api_key_reservations")
    .where("created_at", "<", now - MAX_WINDOW_MS)
    .execute();
}

/** What a reservation needs to know about a request. */
export interface ReservationRequest {
  readonly requestId: string;
  readonly model: string;
  /** The body sent upstream: its JSON size estimates the input tokens. */
  readonly payload: unknown;
  /** `payload` as the JSON text sent, when at hand (its length is the size; nothing re-serialised). */
  readonly payloadText?: string;
  /** The client's body, for `max_output_tokens` (or `max_completion_tokens` / `max_tokens`). */
  readonly body?: unknown;
}

/** `max_output_tokens`, `max_completion_tokens` or `max_tokens` of a request body, when a positive number. */
export function maxOutputTokensOf(body: unknown): number | null {
  if (!body || typeof body !== "object") return null;
  const b = body as Record<string, unknown>;
  for (const k of ["max_output_tokens", "max_completion_tokens", "max_tokens"]) {
    const v = b[k];
    if (typeof v === "number" && Number.isFinite(v) && v > 0) return v;
  }
  return null;
}

/** Arguments for a settle's SQL text (the same for every settle). */
const SAMPLE_REF: ReservationRef = { id: "", keyId: "", createdAt: 0 };
const ZERO_USAGE: UsageFigures = { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costUsd: 0 };
/** A reservation's settle statement before it is settled. */
const NO_SQL: SqlText = { sql: "", parameters: [] };

function openKey(apiKeyId: string, requestId: string): string {
  return `${apiKeyId}\u0000${requestId}`;
}

/** A reservation held for one request: settle it with the request's log row when it is over. */
export interface LimitHold {
  readonly id: string;
  /** How the store finds the reservation. */
  readonly ref: ReservationRef;
  /**
   * Settles with the usage in `row` (nothing used: zeros). Never rejects; logs a failure. Resolves
   * once the settle is committed or failed, or once the settle wait's bound has passed (see
   * {@link SettleWait}; the settle goes on); undefined when it committed, or failed and was
   * logged, before this returned (nothing to wait for).
   */
  settle(row: NewRequestLogRow): Promise<void> | undefined;
}

export interface ReservationLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** What a reservation's settle needs: one per gateway, shared by its reservations. */
interface SettleContext {
  readonly db: Kysely<Database>;
  readonly group: GroupCommit | null;
  readonly wait: SettleWait | null;
  readonly log: ReservationLog;
}

/**
 * One request's reservation, from its hold to its release: the one object the group commit queues
 * for the hold and for the settle, the settle wait keeps, and the maps of held and queued
 * reservations remember. Its steps make no closure or promise chain of their own: the hold waits
 * on its batch's shared promise, the settle on one promise, released by the end of its batch (or of
 * its statement, on PostgreSQL) or by the settle wait's bound. It keeps nothing of the request's
 * body (the payload, its text, the client's body: a long Codex history): it lives as long as the
 * request's stream.
 */
class Reservation implements LimitHold, ReservationRef, HoldOp, SettleWrite, PendingSettle {
  readonly keyId: string;
  refused: GatewayError | undefined = undefined;
  since = 0;
  /** The settle's usage and statement (set by {@link settle}). */
  real: Usage = zeroUsage;
  settleSql: SqlText = NO_SQL;
  #release: (() => void) | null = null;

  constructor(
    private readonly ctx: SettleContext,
    readonly id: string,
    readonly key: KeyLimits,
    readonly requestId: string,
    readonly model: string,
    readonly estimate: Usage,
    readonly createdAt: number,
  ) {
    this.keyId = key.id;
  }

  get ref(): ReservationRef {
    return this;
  }

  settle(row: NewRequestLogRow, alone = false): Promise<void> | undefined {
    const { db, group, wait } = this.ctx;
    const inputTokens = row.input_tokens ?? 0;
    const cachedInputTokens = row.cached_input_tokens ?? 0;
    const outputTokens = row.output_tokens ?? 0;
    const cost = row.cost_usd ?? costUsd(this.model, { inputTokens, cachedInputTokens, outputTokens }) ?? 0;
    const usage = { inputTokens, cachedInputTokens, outputTokens, costUsd: cost };
    if (group) {
      this.real = asUsage(usage);
      this.settleSql = settleQuery(db, this, usage);
      // Committed (or failed and logged) already: nothing for the client's end to wait for.
      if (alone && group.settleNow(this)) {
        this.settleSql = NO_SQL;
        return undefined;
      }
    }
    const released = new Promise<void>((resolve) => {
      this.#release = resolve;
    });
    wait?.start(this);
    if (group) group.settle(this);
    else
      settle(db, this, usage).then(
        () => this.ended(null),
        (e: unknown) => this.ended(e),
      );
    return released;
  }

  ended(e: unknown): void {
    const { wait, log } = this.ctx;
    // Run (or failed) for good: the reservation stays in the queued map until its log row is
    // written (up to the map's bound when the writer fails), so it keeps no statement.
    this.settleSql = NO_SQL;
    if (e !== null)
      try {
        log.warn(
          { err: e instanceof Error ? e.message : String(e), reservationId: this.id },
          "settling an API-key reservation failed; its estimate keeps counting",
        );
      } catch {
        // A log sink that throws has nowhere to report to; the client's end must still come.
      }
    if (wait) wait.ended(this, e === null);
    else this.release();
  }

  release(): void {
    const release = this.#release;
    this.#release = null;
    release?.();
  }
}

/**
 * The reservations of one gateway: `hold` before forwarding, `LimitHold.settle` when the request is
 * over (just before its log row is queued), `rowsWritten` once log rows are in the store.
 */
export class LimitReservations {
  /** Holds of requests in flight in this process, by key and request id, until their row is queued. */
  readonly #open = new Map<string, Reservation>();
  /**
   * Reservations (key, time and id) of requests whose log row is queued, until the row is written
   * (then each is deleted by its primary key: in one group commit on SQLite, one after another on
   * PostgreSQL). Bounded: the oldest are forgotten past {@link QUEUED_IDS}
   * (their rows, should they be written, find their reservation by key and request id instead).
   */
  readonly #queued = new Map<string, ReservationRef>();
  /** SQLite: reservations, settles and deletes grouped per event-loop turn, one commit each. */
  readonly #group: GroupCommit | null;
  /**
   * Holds being written (not in {@link #open} yet). With none and nothing in {@link #open}, a settle
   * is its own batch at once (see {@link GroupCommit.settleNow}).
   */
  #holding = 0;
  readonly #settles: SettleContext;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: ReservationLog,
    private readonly newId: () => string = () => crypto.randomUUID(),
    /** The store's SQLite connection: reservations are written synchronously on it (see `reserve`). */
    sqlite?: SqliteExclusive,
    settleWait?: SettleWaitOptions,
  ) {
    this.#group = sqlite ? new GroupCommit(db, sqlite) : null;
    // PostgreSQL: stuck settles are cancelled (see `SettleWait`).
    const stuck =
      settleWait && dialectOf(db) === "postgres"
        ? (olderThanMs: number) =>
            cancelStuckSettles(db, settleQuery(db, SAMPLE_REF, ZERO_USAGE).sql, olderThanMs)
        : undefined;
    this.#settles = {
      db,
      group: this.#group,
      // The bound on the wait for a settle (none: the settle is waited for until it ends).
      wait: settleWait ? new SettleWait(settleWait, log, stuck) : null,
      log,
    };
  }

  /**
   * Reserves the request's estimated usage on `key` (null key, or a key without limits: null);
   * throws 429 `rate_limit_exceeded` when it does not fit.
   */
  async hold(
    key: { readonly id: string; readonly createdAt: number; readonly limits: readonly LimitSpec[] } | null,
    req: ReservationRequest,
    now: number,
  ): Promise<LimitHold | null> {
    if (!key || key.limits.length === 0) return null;
    const id = this.newId();
    const bodyBytes = (req.payloadText ?? JSON.stringify(req.payload ?? null)).length;
    const estimate = asUsage(estimateUsage(req.model, bodyBytes, maxOutputTokensOf(req.body)));
    const r = new Reservation(this.#settles, id, key, req.requestId, req.model, estimate, now);
    if (this.#group) {
      this.#holding++;
      try {
        await this.#group.reserve(r);
      } finally {
        this.#holding--;
      }
      if (r.refused) throw r.refused;
    } else await reserve(this.db, key, r, now);
    this.#open.set(openKey(key.id, req.requestId), r);
    return r;
  }

  /**
   * A log row was queued: the request is over, its reservation is settled with the row's usage.
   * Settles once the settle is committed, or given up waiting for (never rejects; see
   * {@link LimitHold.settle}); undefined when the request held nothing, or when its settle was
   * over before this returned: on SQLite, a settle while no other request of this process holds a
   * reservation is its own batch at once (see {@link GroupCommit.settleNow}).
   */
  rowAdded(row: NewRequestLogRow): Promise<void> | undefined {
    if (!row.api_key_id) return undefined;
    const k = openKey(row.api_key_id, row.request_id);
    const hold = this.#open.get(k);
    if (!hold) return undefined;
    this.#open.delete(k);
    this.#queued.set(k, hold);
    if (this.#queued.size > QUEUED_IDS) {
      const oldest = this.#queued.keys().next().value as string;
      this.#queued.delete(oldest);
    }
    return hold.settle(row, this.#open.size === 0 && this.#holding === 0);
  }

  /** Log rows are in the store: each keyed row's reservation is dropped (one per row). */
  async rowsWritten(rows: readonly NewRequestLogRow[]): Promise<void> {
    // Reservations held in this process are known: deleted by primary key (on SQLite, all in one group commit).
    const refs: ReservationRef[] = [];
    const others: NewRequestLogRow[] = [];
    for (const r of rows) {
      if (!r.api_key_id) continue;
      const k = openKey(r.api_key_id, r.request_id);
      const ref = this.#queued.get(k);
      if (ref === undefined) {
        others.push(r);
        continue;
      }
      this.#queued.delete(k);
      refs.push(ref);
    }
    const failed = (e: unknown) =>
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, "dropping a reservation failed");
    if (this.#group) {
      // All in one batch: they share its promise (a failed batch fails each of them).
      let batch: Promise<void> | undefined;
      for (const ref of refs) batch = this.#group.write(releaseQuery(this.db, ref));
      if (batch)
        await batch.catch((e: unknown) => {
          for (const _ of refs) failed(e);
        });
    } else {
      // PostgreSQL: one at a time, not one pooled connection each.
      for (const ref of refs) await this.#execute(releaseQuery(this.db, ref)).catch(failed);
    }
    for (const r of others) {
      if (!r.api_key_id) continue;
      try {
        const db = this.db;
        await this.#execute(
          precompiledText(db, "releaseForRow", [r.api_key_id, r.request_id], (a) =>
            db
              .deleteFrom("api_key_reservations")
              .where("api_key_id", "=", a[0] as string)
              .where(
                "id",
                "=",
                db
                  .selectFrom("api_key_reservations")
                  .select("id")
                  .where("api_key_id", "=", a[0] as string)
                  .where("request_id", "=", a[1] as string)
                  .orderBy("settled", "desc")
                  .limit(1),
              ),
          ),
        );
      } catch (e) {
        this.log.warn({ err: e instanceof Error ? e.message : String(e) }, "dropping a reservation failed");
      }
    }
  }

  /** A write outside any reservation: grouped on SQLite, through Kysely otherwise. */
  async #execute(q: SqlText): Promise<void> {
    if (this.#group) await this.#group.write(q);
    else await this.db.executeQuery(asQuery(q));
  }
}
