/**
 * Retention: request-log rows, audit rows and account events, hourly usage aggregates and expired
 * admin sessions are deleted once older than their setting (`CODEX_LB_REQUEST_LOG_RETENTION_DAYS`,
 * `CODEX_LB_AUDIT_RETENTION_DAYS`, `CODEX_LB_USAGE_RETENTION_DAYS`), in the background: shortly
 * after start and then every hour, in small batches with a pause between them, so no request waits
 * for more than one batch. Pruned request-log rows stay counted in their hour buckets (the delete
 * trigger skips them while the prune flag is set, see migration 0070), so usage outlives the rows.
 *
 * @module
 */
import { type Kysely, sql } from "kysely";
import { type Clock, sleep, type TimerHandle } from "../core/clock.ts";
import type { Database } from "../store/schema.ts";

const DAY_MS = 86_400_000;

export interface RetentionPolicy {
  readonly requestLogDays: number;
  readonly auditDays: number;
  readonly usageDays: number;
}

export interface PruneResult {
  readonly requestLogs: number;
  readonly auditLogs: number;
  readonly accountEvents: number;
  readonly usageBuckets: number;
  readonly adminSessions: number;
  readonly batches: number;
  /** The longest single batch (the longest a writer could wait on the pruner), in ms. */
  readonly maxBatchMs: number;
  readonly ms: number;
}

export interface PruneOptions {
  /** Rows per delete statement (and transaction). */
  readonly batch?: number;
  /** Awaited between batches so requests get the store (default: 1 ms on the clock's timers). */
  readonly pause?: () => Promise<void>;
}

/** A 1 ms wait on `timers` between batches, so requests get the store. */
const yieldToOthers = (timers?: Pick<Clock, "setTimeout">) => () => sleep(1, timers);

/** Deletes everything older than the policy allows at `now`; safe to run on several replicas at once. */
export async function pruneOnce(
  db: Kysely<Database>,
  dialect: "sqlite" | "postgres",
  now: number,
  policy: RetentionPolicy,
  opts: PruneOptions = {},
): Promise<PruneResult> {
  const batch = opts.batch ?? 5000;
  const pause = opts.pause ?? yieldToOthers();
  const t0 = performance.now();
  let batches = 0;
  let maxBatchMs = 0;

  /** Runs `step` (one bounded delete) until it deletes less than a batch; returns the total. */
  const loop = async (step: (trx: Kysely<Database>) => Promise<number>, flag = false): Promise<number> => {
    let total = 0;
    for (;;) {
      const t = performance.now();
      const n = await db.transaction().execute(async (trx) => {
        if (flag && dialect === "sqlite")
          await trx.updateTable("retention_state").set({ pruning: 1 }).where("id", "=", 1).execute();
        if (flag && dialect === "postgres")
          await sql`SELECT set_config('codex_lb.pruning', 'on', true)`.execute(trx);
        const deleted = await step(trx);
        if (flag && dialect === "sqlite")
          await trx
            .updateTable("retention_state")
            .set({ pruning: 0, last_pruned_at: now })
            .where("id", "=", 1)
            .execute();
        return deleted;
      });
      batches++;
      maxBatchMs = Math.max(maxBatchMs, performance.now() - t);
      total += n;
      if (n < batch) return total;
      await pause();
    }
  };

  const logCutoff = now - policy.requestLogDays * DAY_MS;
  const requestLogs = await loop(async (trx) => {
    const r = await trx
      .deleteFrom("request_logs")
      .where(
        "id",
        "in",
        trx
          .selectFrom("request_logs")
          .select("id")
          .where("requested_at", "<", logCutoff)
          .orderBy("requested_at")
          .limit(batch),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }, true);

  const auditCutoff = now - policy.auditDays * DAY_MS;
  const auditLogs = await loop(async (trx) => {
    const r = await trx
      .deleteFrom("audit_logs")
      .where("id", "in", trx.selectFrom("audit_logs").select("id").where("at", "<", auditCutoff).limit(batch))
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  });
  const accountEvents = await loop(async (trx) => {
    const r = await trx
      .deleteFrom("account_events")
      .where(
        "id",
        "in",
        trx.selectFrom("account_events").select("id").where("at", "<", auditCutoff).limit(batch),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  });

  const usageCutoff = now - policy.usageDays * DAY_MS;
  const usage = await db
    .deleteFrom("api_key_usage_hourly")
    .where("hour", "<", usageCutoff)
    .executeTakeFirst();
  const sessions = await db.deleteFrom("admin_sessions").where("expires_at", "<", now).executeTakeFirst();
  return {
    requestLogs,
    auditLogs,
    accountEvents,
    usageBuckets: Number(usage.numDeletedRows),
    adminSessions: Number(sessions.numDeletedRows),
    batches,
    maxBatchMs: Math.round(maxBatchMs * 10) / 10,
    ms: Math.round(performance.now() - t0),
  };
}

export interface PrunerLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Runs {@link pruneOnce} `firstDelayMs` after start and then every `intervalMs`, on the given clock. */
export class Pruner {
  #timer: TimerHandle | undefined;
  #running: Promise<PruneResult | null> | null = null;
  #stopped = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: "sqlite" | "postgres",
    private readonly clock: Clock,
    private readonly policy: RetentionPolicy,
    private readonly log: PrunerLog,
    private readonly opts: PruneOptions & {
      firstDelayMs?: number;
      intervalMs?: number;
      /** Whether this process prunes now (replicas on one database: the leader only). */
      shouldRun?: () => boolean;
    } = {},
  ) {}

  start(): void {
    this.#stopped = false;
    this.#schedule(this.opts.firstDelayMs ?? 60_000);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.clock.setTimeout(() => {
      const run = this.opts.shouldRun?.() === false ? Promise.resolve(null) : this.runNow();
      void run.finally(() => this.#schedule(this.opts.intervalMs ?? 3_600_000));
    }, ms);
  }

  /** One prune now (or the one already running); null when it failed (logged). */
  runNow(): Promise<PruneResult | null> {
    this.#running ??= pruneOnce(this.db, this.dialect, this.clock.now(), this.policy, {
      ...this.opts,
      pause: this.opts.pause ?? yieldToOthers(this.clock),
    })
      .then((r) => {
        if (r.requestLogs + r.auditLogs + r.accountEvents + r.usageBuckets + r.adminSessions > 0)
          this.log.info({ ...r }, "retention: old rows pruned");
        return r;
      })
      .catch((e) => {
        this.log.error({ err: e instanceof Error ? e.message : String(e) }, "retention: prune failed");
        return null;
      })
      .finally(() => {
        this.#running = null;
      });
    return this.#running;
  }

  /** Stops scheduling and waits for a prune in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.clock.clearTimeout(this.#timer);
    await this.#running;
  }
}
