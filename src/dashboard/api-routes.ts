/**
 * The admin endpoints the dashboard needs beyond the feature routes, documented in `/docs` like the
 * rest: `GET /api/events` (server-sent events: what changed, by topic), `GET /api/overview` (pool
 * health and today's traffic) and `GET /api/usage/report` (28-day usage, breakdowns, latency).
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { Clock, TimerHandle } from "../core/clock.ts";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { isUsable } from "../core/health.ts";
import { ErrorBody } from "../core/schemas.ts";
import type { AccountStatus } from "../core/types.ts";
import type { AdminEvent, AdminEvents } from "./events.ts";
import { eventTopics } from "./events.ts";
import { perMinute, totals, usageReport } from "./stats.ts";

/** A comment line keeps idle proxies from closing the stream. */
const KEEPALIVE_MS = 15_000;

const TotalsSchema = {
  requests: t.Integer(),
  errors: t.Integer(),
  inputTokens: t.Number(),
  cachedInputTokens: t.Number(),
  outputTokens: t.Number(),
  costUsd: t.Number({ description: "Stored cost, else priced with the pricing table" }),
};
const Nullable = <T extends import("@sinclair/typebox").TSchema>(s: T) => t.Union([s, t.Null()]);
const Percentiles = t.Object({
  p50: Nullable(t.Number()),
  p90: Nullable(t.Number()),
  p99: Nullable(t.Number()),
});

const Overview = t.Object({
  generatedAt: t.Integer({ description: "epoch ms" }),
  accounts: t.Object({
    total: t.Integer(),
    usable: t.Integer({ description: "Accounts the balancer may choose now" }),
    byStatus: t.Record(t.String(), t.Integer()),
  }),
  traffic: t.Object({
    requestsLastMinute: t.Integer(),
    requestsLastHour: t.Integer(),
    errorsLastHour: t.Integer(),
    errorRateLastHour: t.Number({ description: "0..1" }),
    perMinute: t.Array(t.Integer(), {
      description: "Requests per minute over the last 60 minutes, oldest first",
    }),
  }),
  today: t.Object({ since: t.Integer({ description: "epoch ms, start of the day" }), ...TotalsSchema }),
});

const UsageReport = t.Object({
  since: t.Integer(),
  until: t.Integer(),
  days: t.Array(t.Object({ day: t.String({ description: "YYYY-MM-DD" }), ...TotalsSchema })),
  byModel: t.Array(t.Object({ model: Nullable(t.String()), ...TotalsSchema })),
  byAccount: t.Array(
    t.Object({ accountId: Nullable(t.String()), email: Nullable(t.String()), ...TotalsSchema }),
  ),
  byApiKey: t.Array(
    t.Object({ apiKeyId: Nullable(t.String()), name: Nullable(t.String()), ...TotalsSchema }),
  ),
  latency: t.Object({
    samples: t.Integer({
      description: "Successful requests the percentiles are computed over (newest 10,000)",
    }),
    ttfbMs: Percentiles,
    outputTokensPerSecond: Percentiles,
  }),
});

const enc = new TextEncoder();
const frame = (e: AdminEvent) => enc.encode(`event: ${e.topic}\ndata: ${JSON.stringify(e.data)}\n\n`);

/** The SSE response for one client: events until it disconnects or the gateway stops. */
function eventStream(events: AdminEvents, signal: AbortSignal, time: Clock): Response {
  let cleanup = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const close = () => {
        if (!open) return;
        open = false;
        cleanup();
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      const send = (bytes: Uint8Array) => {
        if (!open) return;
        try {
          controller.enqueue(bytes);
        } catch {
          close();
        }
      };
      const unsubscribe = events.subscribe((e) => send(frame(e)), close);
      if (!unsubscribe) {
        // Checked before the stream was made (see the route); a race only ends this stream.
        open = false;
        controller.close();
        return;
      }
      let keepalive: TimerHandle | undefined;
      const tick = () => {
        send(enc.encode(": keepalive\n\n"));
        if (open) keepalive = time.setTimeout(tick, KEEPALIVE_MS);
      };
      keepalive = time.setTimeout(tick, KEEPALIVE_MS);
      cleanup = () => {
        time.clearTimeout(keepalive);
        unsubscribe();
      };
      signal.addEventListener("abort", close, { once: true });
      send(enc.encode(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ topics: eventTopics })}\n\n`));
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}

/** How long a usage report is reused (it scans every log row of its range). */
const REPORT_TTL_MS = 30_000;

/** The dashboard's admin endpoints. */
export function dashboardApiRoutes(deps: AppDeps & { events: AdminEvents }) {
  const db = deps.store.db;
  const reports = new Map<string, { at: number; report: Promise<Awaited<ReturnType<typeof usageReport>>> }>();
  const report = (days: number, tz: number) => {
    const now = deps.clock();
    const key = `${days}:${tz}`;
    const hit = reports.get(key);
    if (hit && now - hit.at < REPORT_TTL_MS) return hit.report;
    const fresh = usageReport(db, now, days, tz);
    reports.set(key, { at: now, report: fresh });
    fresh.catch(() => reports.delete(key));
    return fresh;
  };
  const tags = ["dashboard"];
  return new Elysia({ name: "routes:dashboard-api" })
    .get(
      "/api/events",
      ({ request }) => {
        if (deps.events.size >= 64)
          throw new GatewayError(
            "service_unavailable",
            "Too many event streams are open; close one and retry",
          );
        return eventStream(deps.events, request.signal, deps.time);
      },
      {
        detail: {
          tags,
          summary: "Live changes as server-sent events",
          description:
            "A `text/event-stream`. Event names are topics: `requests` (new request-log rows; data `{count, requestIds}`), " +
            "`accounts`, `settings`, `api-keys`, `firewall`, `audit` (data `{count}`): refetch what you show of that topic. " +
            "`hello` opens the stream; a comment line every 15 s keeps it alive. Bursts are merged (100 ms).",
          responses: {
            200: {
              description: "The event stream",
              content: { "text/event-stream": { schema: { type: "string" } } },
            },
          },
        },
      },
    )
    .get(
      "/api/overview",
      async ({ query }) => {
        const now = deps.clock();
        const since = query.since ?? Math.floor(now / 86_400_000) * 86_400_000;
        const accounts = await db
          .selectFrom("accounts")
          .select(["status", "reset_at", "cooldown_until"])
          .execute();
        const byStatus: Record<string, number> = {};
        let usable = 0;
        for (const a of accounts) {
          byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
          if (
            isUsable(
              {
                status: a.status as AccountStatus,
                resetAt: a.reset_at === null ? null : Number(a.reset_at),
                cooldownUntil: a.cooldown_until === null ? null : Number(a.cooldown_until),
              },
              now,
            )
          )
            usable++;
        }
        const [minutes, today] = await Promise.all([perMinute(db, now, 60), totals(db, since, now + 1)]);
        const lastHour = minutes.requests.reduce((a, b) => a + b, 0);
        const errorsLastHour = minutes.errors.reduce((a, b) => a + b, 0);
        return {
          generatedAt: now,
          accounts: { total: accounts.length, usable, byStatus },
          traffic: {
            requestsLastMinute: minutes.requests[minutes.requests.length - 1] ?? 0,
            requestsLastHour: lastHour,
            errorsLastHour,
            errorRateLastHour: lastHour === 0 ? 0 : errorsLastHour / lastHour,
            perMinute: minutes.requests,
          },
          today: { since, ...today },
        };
      },
      {
        query: t.Object({
          since: t.Optional(
            t.Numeric({ minimum: 0, description: "Start of 'today' in epoch ms (default: UTC midnight)" }),
          ),
        }),
        detail: {
          tags,
          summary:
            "Pool health and traffic at a glance (accounts by status, requests, errors, today's tokens and cost)",
        },
        response: { 200: Overview, 400: ErrorBody },
      },
    )
    .get("/api/usage/report", ({ query }) => report(query.days ?? 28, query.tzOffsetMinutes ?? 0), {
      query: t.Object({
        days: t.Optional(t.Numeric({ minimum: 1, maximum: 90, default: 28 })),
        tzOffsetMinutes: t.Optional(
          t.Numeric({
            minimum: -840,
            maximum: 840,
            description: "Days start at midnight this many minutes east of UTC",
          }),
        ),
      }),
      detail: {
        tags,
        summary:
          "Tokens and cost per day, by model, account and API key; time-to-first-token and tokens/s percentiles",
      },
      response: { 200: UsageReport, 400: ErrorBody },
    });
}
