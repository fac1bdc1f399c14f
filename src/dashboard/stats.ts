/**
 * Aggregates of the request log for the dashboard's overview and usage pages: per minute, per day,
 * per model, account and API key, plus latency percentiles. Every query is bounded by a time range
 * on the `requested_at` index; cost is the stored `cost_usd` when a row has one, else the pricing
 * table's price of its tokens (the same rule as API-key cost limits).
 *
 * @module
 */
import { type Kysely, sql } from "kysely";
import { costUsd } from "../access/api-keys/pricing.ts";
import type { Database } from "../store/schema.ts";

export interface Totals {
  requests: number;
  errors: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  costUsd: number;
}

const zero = (): Totals => ({
  requests: 0,
  errors: 0,
  inputTokens: 0,
  cachedInputTokens: 0,
  outputTokens: 0,
  costUsd: 0,
});

/** Sums per group and model, so unpriced rows can be priced by their model. */
interface Raw {
  g: string | number | null;
  model: string | null;
  requests: number;
  errors: number;
  input: number;
  cached: number;
  output: number;
  stored_cost: number;
  unpriced_input: number;
  unpriced_cached: number;
  unpriced_output: number;
}

function add(t: Totals, r: Raw): void {
  t.requests += Number(r.requests);
  t.errors += Number(r.errors);
  t.inputTokens += Number(r.input);
  t.cachedInputTokens += Number(r.cached);
  t.outputTokens += Number(r.output);
  t.costUsd +=
    Number(r.stored_cost) +
    (costUsd(r.model, {
      inputTokens: Number(r.unpriced_input),
      cachedInputTokens: Number(r.unpriced_cached),
      outputTokens: Number(r.unpriced_output),
    }) ?? 0);
}

/**
 * Totals of the rows with `since <= requested_at < until`, grouped by `groupBy` (a SQL expression
 * over request_logs; null = one group).
 */
async function grouped(
  db: Kysely<Database>,
  since: number,
  until: number,
  groupBy: ReturnType<typeof sql> | null,
): Promise<Map<string | number | null, Totals>> {
  const g = groupBy ?? sql`0`;
  const rows = await sql<Raw>`
    SELECT ${g} AS g, model,
      count(*) AS requests,
      sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
      coalesce(sum(input_tokens), 0) AS input,
      coalesce(sum(cached_input_tokens), 0) AS cached,
      coalesce(sum(output_tokens), 0) AS output,
      coalesce(sum(cost_usd), 0) AS stored_cost,
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN input_tokens END), 0) AS unpriced_input,
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN cached_input_tokens END), 0) AS unpriced_cached,
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN output_tokens END), 0) AS unpriced_output
    FROM request_logs
    WHERE requested_at >= ${since} AND requested_at < ${until}
    GROUP BY 1, 2`.execute(db);
  const out = new Map<string | number | null, Totals>();
  for (const r of rows.rows) {
    const key = r.g === null ? null : typeof r.g === "bigint" ? Number(r.g) : r.g;
    const t = out.get(key) ?? zero();
    out.set(key, t);
    add(t, r);
  }
  return out;
}

/** Totals over a range (one group). */
export async function totals(db: Kysely<Database>, since: number, until: number): Promise<Totals> {
  return (await grouped(db, since, until, null)).get(0) ?? zero();
}

/** Requests and errors per minute for the `minutes` minutes before `now` (oldest first). */
export async function perMinute(
  db: Kysely<Database>,
  now: number,
  minutes: number,
): Promise<{ requests: number[]; errors: number[] }> {
  const since = now - minutes * 60_000;
  const rows = await sql<{ m: number; n: number; e: number }>`
    SELECT (requested_at - ${since}) / 60000 AS m, count(*) AS n,
      sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS e
    FROM request_logs WHERE requested_at >= ${since} AND requested_at < ${now} GROUP BY 1`.execute(db);
  const requests = new Array<number>(minutes).fill(0);
  const errors = new Array<number>(minutes).fill(0);
  for (const r of rows.rows) {
    const i = Math.min(minutes - 1, Math.max(0, Math.floor(Number(r.m))));
    requests[i]! += Number(r.n);
    errors[i]! += Number(r.e);
  }
  return { requests, errors };
}

export interface UsageReport {
  since: number;
  until: number;
  days: (Totals & { day: string })[];
  byModel: (Totals & { model: string | null })[];
  byAccount: (Totals & { accountId: string | null; email: string | null })[];
  byApiKey: (Totals & { apiKeyId: string | null; name: string | null })[];
  latency: {
    samples: number;
    ttfbMs: Percentiles;
    outputTokensPerSecond: Percentiles;
  };
}
export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/** Latency percentiles are computed over at most this many of the newest successful requests. */
export const LATENCY_SAMPLE = 10_000;

function percentiles(sorted: number[]): Percentiles {
  const at = (p: number) =>
    sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

const dayOf = (ms: number, offsetMin: number) => new Date(ms + offsetMin * 60_000).toISOString().slice(0, 10);

/**
 * The usage report: `days` whole days ending with today (days start at midnight in the caller's
 * time zone, `tzOffsetMinutes` east of UTC), totals per day, model, account and API key, and
 * percentiles of time to first token and output tokens per second.
 */
export async function usageReport(
  db: Kysely<Database>,
  now: number,
  days: number,
  tzOffsetMinutes: number,
): Promise<UsageReport> {
  const offsetMs = tzOffsetMinutes * 60_000;
  const dayMs = 86_400_000;
  const todayStart = Math.floor((now + offsetMs) / dayMs) * dayMs - offsetMs;
  const since = todayStart - (days - 1) * dayMs;
  const until = now + 1;
  // One pass over the range: sums per day, model, account and key; the four breakdowns are folded
  // from these groups (far fewer than the rows).
  const rows = await sql<Raw & { day: number; account_id: string | null; api_key_id: string | null }>`
    SELECT (requested_at - ${since}) / ${dayMs} AS day, model, account_id, api_key_id,
      count(*) AS requests,
      sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
      coalesce(sum(input_tokens), 0) AS input,
      coalesce(sum(cached_input_tokens), 0) AS cached,
      coalesce(sum(output_tokens), 0) AS output,
      coalesce(sum(cost_usd), 0) AS stored_cost,
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN input_tokens END), 0) AS unpriced_input,
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN cached_input_tokens END), 0) AS unpriced_cached,
      coalesce(sum(CASE WHEN cost_usd IS NULL THEN output_tokens END), 0) AS unpriced_output
    FROM request_logs
    WHERE requested_at >= ${since} AND requested_at < ${until}
    GROUP BY 1, 2, 3, 4`.execute(db);
  const perDay = new Map<number, Totals>();
  const perModel = new Map<string | null, Totals>();
  const perAccount = new Map<string | null, Totals>();
  const perKey = new Map<string | null, Totals>();
  const into = <K>(m: Map<K, Totals>, k: K, r: Raw) => {
    const t = m.get(k) ?? zero();
    m.set(k, t);
    add(t, r);
  };
  for (const r of rows.rows) {
    into(perDay, Number(r.day), r);
    into(perModel, r.model, r);
    into(perAccount, r.account_id, r);
    into(perKey, r.api_key_id, r);
  }
  const dayList: (Totals & { day: string })[] = [];
  for (let i = 0; i < days; i++)
    dayList.push({ day: dayOf(since + i * dayMs, tzOffsetMinutes), ...(perDay.get(i) ?? zero()) });
  const accountIds = [...perAccount.keys()].filter((k): k is string => typeof k === "string");
  const keyIds = [...perKey.keys()].filter((k): k is string => typeof k === "string");
  const [emails, names] = await Promise.all([
    accountIds.length
      ? db.selectFrom("accounts").select(["id", "email"]).where("id", "in", accountIds).execute()
      : [],
    keyIds.length ? db.selectFrom("api_keys").select(["id", "name"]).where("id", "in", keyIds).execute() : [],
  ]);
  const byCost = <T extends Totals>(a: T, b: T) => b.costUsd - a.costUsd || b.requests - a.requests;
  const sample = await sql<{ ttfb: number | null; latency: number | null; output: number | null }>`
    SELECT ttfb_ms AS ttfb, latency_ms AS latency, output_tokens AS output FROM request_logs
    WHERE requested_at >= ${since} AND requested_at < ${until} AND status = 'success'
    ORDER BY requested_at DESC LIMIT ${LATENCY_SAMPLE}`.execute(db);
  const ttfb: number[] = [];
  const tps: number[] = [];
  for (const r of sample.rows) {
    if (r.ttfb !== null) ttfb.push(Number(r.ttfb));
    const gen = Number(r.latency ?? 0) - Number(r.ttfb ?? 0);
    if (r.output !== null && Number(r.output) > 0 && gen > 0) tps.push((Number(r.output) * 1000) / gen);
  }
  ttfb.sort((a, b) => a - b);
  tps.sort((a, b) => a - b);
  return {
    since,
    until: now,
    days: dayList,
    byModel: [...perModel].map(([k, t]) => ({ model: (k as string | null) ?? null, ...t })).sort(byCost),
    byAccount: [...perAccount]
      .map(([k, t]) => ({
        accountId: (k as string | null) ?? null,
        email: emails.find((e) => e.id === k)?.email ?? null,
        ...t,
      }))
      .sort(byCost),
    byApiKey: [...perKey]
      .map(([k, t]) => ({
        apiKeyId: (k as string | null) ?? null,
        name: names.find((e) => e.id === k)?.name ?? null,
        ...t,
      }))
      .sort(byCost),
    latency: {
      samples: sample.rows.length,
      ttfbMs: percentiles(ttfb),
      outputTokensPerSecond: percentiles(tps),
    },
  };
}
