/**
 * Limit windows and usage counting. A key's windows are anchored at the hour of the key's creation:
 * the daily window of a key created at 09:13 runs 09:00 → 09:00 the next day, and so on (5h,
 * daily = 24 h, weekly = 7 days, monthly = 30 days). Usage is the sum of the key's `request_logs`
 * rows in the current window, read from hour buckets that triggers keep in step with the logs
 * (`api_key_usage_hourly`); cost is `cost_usd` when the row has one, else the pricing table's.
 * To that come the key's reservations whose log row is not written yet (src/access/api-keys/
 * reservations.ts): requests in flight (their estimates) and finished requests whose row is still
 * queued — or was lost with a crashed process (their real usage) — so a `kill -9` never makes the
 * usage shown or enforced smaller than what was served.
 *
 * @module
 */
import { CompiledQuery, type Kysely, sql } from "kysely";
import type { Database } from "../../store/schema.ts";
import { precompiled, precompiledText, type SqlText } from "./precompiled.ts";
import { costUsd } from "./pricing.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Window lengths in milliseconds. */
export const limitWindows = { "5h": 5 * HOUR, daily: DAY, weekly: 7 * DAY, monthly: 30 * DAY } as const;
export type LimitWindow = keyof typeof limitWindows;
export const limitTypes = ["total_tokens", "input_tokens", "output_tokens", "cost_usd"] as const;
export type LimitType = (typeof limitTypes)[number];

export interface LimitSpec {
  readonly limitType: LimitType;
  readonly limitWindow: LimitWindow;
  readonly maxValue: number;
}

/**
 * The window containing `now` for a key created at `createdAt`: `[start, resetsAt)`. Windows start
 * at the hour the key was created (usage is kept in hour buckets), then follow each other.
 */
export function windowBounds(
  createdAt: number,
  window: LimitWindow,
  now: number,
): { start: number; resetsAt: number } {
  const anchor = Math.floor(createdAt / HOUR) * HOUR;
  const len = limitWindows[window];
  const k = Math.max(0, Math.floor((now - anchor) / len));
  const start = anchor + k * len;
  return { start, resetsAt: start + len };
}

export interface Usage {
  readonly requests: number;
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
  /** input + output. */
  readonly totalTokens: number;
  readonly costUsd: number;
}

export const zeroUsage: Usage = {
  requests: 0,
  inputTokens: 0,
  cachedInputTokens: 0,
  outputTokens: 0,
  totalTokens: 0,
  costUsd: 0,
};

/**
 * Sums a key's request logs with `requested_at` in `[since, until)`, read from the hour buckets the
 * store keeps (so both bounds count at hour granularity: pass hour-aligned instants).
 */
export async function usageBetween(
  db: Kysely<Database>,
  apiKeyId: string,
  since: number,
  until: number,
): Promise<Usage> {
  const q = usageQuery(db, apiKeyId, since, until);
  const rows = (await db.executeQuery(CompiledQuery.raw(q.sql, [...q.parameters]))).rows;
  return usageOfRows(rows as Record<string, unknown>[]);
}

/** The usage sums both window queries read, under the names {@link usageOfTotals} and the grouped reader use. */
const USAGE_SUMS = [
  sql<number>`sum(requests)`.as("requests"),
  sql<number>`sum(input_tokens)`.as("input"),
  sql<number>`sum(cached_input_tokens)`.as("cached"),
  sql<number>`sum(output_tokens)`.as("output"),
  sql<number>`sum(stored_cost_usd)`.as("stored_cost"),
  sql<number>`sum(unpriced_input_tokens)`.as("np_input"),
  sql<number>`sum(unpriced_cached_input_tokens)`.as("np_cached"),
  sql<number>`sum(unpriced_output_tokens)`.as("np_output"),
] as const;

/** The query of {@link usageBetween}, compiled once per dialect (every keyed request with limits reads it). */
export function usageQuery(db: Kysely<Database>, apiKeyId: string, since: number, until: number): SqlText {
  return precompiledText(db, "usageBetween", [apiKeyId, since, until], (a) =>
    db
      .selectFrom("api_key_usage_hourly")
      .select(["model", ...USAGE_SUMS])
      .where("api_key_id", "=", a[0] as string)
      .where("hour", ">=", a[1] as number)
      .where("hour", "<", a[2] as number)
      .groupBy("model"),
  );
}

/**
 * {@link usageQuery} without its `GROUP BY` (whose temporary b-tree cost more than the rest of the
 * query): the sums over every model, the number of buckets and the smallest and largest model. When
 * the window holds one model only (or nothing), that is {@link usageQuery}'s answer
 * ({@link usageOfTotals}); with several, the grouped query is needed to price each model.
 */
export function usageTotalsQuery(
  db: Kysely<Database>,
  apiKeyId: string,
  since: number,
  until: number,
): SqlText {
  return precompiledText(db, "usageTotals", [apiKeyId, since, until], (a) =>
    db
      .selectFrom("api_key_usage_hourly")
      .select([
        sql<number>`count(*)`.as("buckets"),
        sql<string | null>`min(model)`.as("model"),
        sql<string | null>`max(model)`.as("last_model"),
        ...USAGE_SUMS,
      ])
      .where("api_key_id", "=", a[0] as string)
      .where("hour", ">=", a[1] as number)
      .where("hour", "<", a[2] as number),
  );
}

/**
 * The usage in the row of {@link usageTotalsQuery} when its window holds at most one model (the
 * same as {@link usageOfRows} over {@link usageQuery}'s rows), else null.
 */
export function usageOfTotals(row: Record<string, unknown> | undefined): Usage | null {
  if (!row || Number(row.buckets ?? 0) === 0) return usageOfRows([]);
  if (row.model !== row.last_model) return null;
  return usageOfRows([row]);
}

/** The usage in the rows of {@link usageQuery} (one per model). */
export function usageOfRows(rows: readonly Record<string, unknown>[]): Usage {
  let u = { ...zeroUsage };
  for (const r of rows) {
    // Rows without a stored cost are priced per model from their token sums.
    const priced =
      costUsd(r.model as string, {
        inputTokens: Number(r.np_input),
        cachedInputTokens: Number(r.np_cached),
        outputTokens: Number(r.np_output),
      }) ?? 0;
    u = {
      requests: u.requests + Number(r.requests),
      inputTokens: u.inputTokens + Number(r.input),
      cachedInputTokens: u.cachedInputTokens + Number(r.cached),
      outputTokens: u.outputTokens + Number(r.output),
      totalTokens: u.totalTokens + Number(r.input) + Number(r.output),
      costUsd: u.costUsd + Number(r.stored_cost) + priced,
    };
  }
  return u;
}

/**
 * Sums a key's reservations created in `[since, until)` whose request has no log row yet (a logged
 * request is in the hour buckets already; its reservation is about to go).
 */
export async function reservedBetween(
  db: Kysely<Database>,
  apiKeyId: string,
  since: number,
  until: number,
): Promise<Usage> {
  // Compiled once per dialect: a key's limit states are read again after each log flush of its rows.
  const q = precompiled(db, "reservedBetween", [apiKeyId, since, until], (a) =>
    db
      .selectFrom("api_key_reservations as r")
      .select([
        sql<number>`count(*)`.as("n"),
        sql<number>`coalesce(sum(r.input_tokens), 0)`.as("input"),
        sql<number>`coalesce(sum(r.cached_input_tokens), 0)`.as("cached"),
        sql<number>`coalesce(sum(r.output_tokens), 0)`.as("output"),
        sql<number>`coalesce(sum(r.cost_usd), 0)`.as("cost"),
      ])
      .where("r.api_key_id", "=", a[0] as string)
      .where("r.created_at", ">=", a[1] as number)
      .where("r.created_at", "<", a[2] as number)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom("request_logs as l")
              .select("l.id")
              .whereRef("l.request_id", "=", "r.request_id")
              .whereRef("l.api_key_id", "=", "r.api_key_id"),
          ),
        ),
      ),
  );
  const r = (await db.executeQuery(q)).rows[0] as Record<string, unknown> | undefined;
  const input = Number(r?.input ?? 0);
  const output = Number(r?.output ?? 0);
  return {
    requests: Number(r?.n ?? 0),
    inputTokens: input,
    cachedInputTokens: Number(r?.cached ?? 0),
    outputTokens: output,
    totalTokens: input + output,
    costUsd: Number(r?.cost ?? 0),
  };
}

/** The sum of two usages (logged plus reserved, batch plus row). */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    requests: a.requests + b.requests,
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    costUsd: a.costUsd + b.costUsd,
  };
}

/** `a` without `b` (a reservation's estimate, replaced by its real usage). */
export function subtractUsage(a: Usage, b: Usage): Usage {
  return {
    requests: a.requests - b.requests,
    inputTokens: a.inputTokens - b.inputTokens,
    cachedInputTokens: a.cachedInputTokens - b.cachedInputTokens,
    outputTokens: a.outputTokens - b.outputTokens,
    totalTokens: a.totalTokens - b.totalTokens,
    costUsd: a.costUsd - b.costUsd,
  };
}

/** The figure a limit type counts. */
export function valueFor(type: LimitType, u: Usage): number {
  switch (type) {
    case "total_tokens":
      return u.totalTokens;
    case "input_tokens":
      return u.inputTokens;
    case "output_tokens":
      return u.outputTokens;
    case "cost_usd":
      return u.costUsd;
  }
}

export interface LimitState extends LimitSpec {
  readonly currentValue: number;
  readonly remainingValue: number;
  readonly windowStart: number;
  readonly resetsAt: number;
  readonly reached: boolean;
}

/**
 * Each limit with its usage in its current window (one pair of queries per distinct window): the
 * logged usage plus the reservations not logged yet ("used or reserved").
 */
export async function limitStates(
  db: Kysely<Database>,
  key: { readonly id: string; readonly createdAt: number; readonly limits: readonly LimitSpec[] },
  now: number,
): Promise<LimitState[]> {
  const byWindow = new Map<LimitWindow, Promise<Usage>>();
  const out: LimitState[] = [];
  for (const l of key.limits) {
    const { start, resetsAt } = windowBounds(key.createdAt, l.limitWindow, now);
    let usage = byWindow.get(l.limitWindow);
    if (!usage) {
      usage = Promise.all([
        usageBetween(db, key.id, start, resetsAt),
        reservedBetween(db, key.id, start, resetsAt),
      ]).then(([logged, reserved]) => addUsage(logged, reserved));
      byWindow.set(l.limitWindow, usage);
    }
    const current = valueFor(l.limitType, await usage);
    out.push({
      ...l,
      currentValue: current,
      remainingValue: Math.max(0, l.maxValue - current),
      windowStart: start,
      resetsAt,
      reached: current >= l.maxValue,
    });
  }
  return out;
}
