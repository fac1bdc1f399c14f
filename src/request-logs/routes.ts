/**
 * `GET /api/request-logs`: the request log, newest first, with paging (`limit`, `offset`) and
 * filters (`accountId`, `apiKeyId`, `model`, `status`, `kind`, `endpoint`, `requestId`, `since`/`until` as
 * ISO 8601 or epoch milliseconds; answers give epoch ms). Each item carries its cost (stored, else priced).
 *
 * @module
 */
import { Elysia, t } from "elysia";
import { costUsd } from "../access/api-keys/pricing.ts";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { Page, pageQuery } from "../core/paging.ts";
import type { RequestLogRow } from "../store/schema.ts";

const Nullable = <T extends import("@sinclair/typebox").TSchema>(s: T) => t.Union([s, t.Null()]);

export const RequestLogItem = t.Object({
  id: t.Integer(),
  requestedAt: t.Integer({ description: "epoch milliseconds" }),
  requestId: t.String(),
  accountId: Nullable(t.String()),
  apiKeyId: Nullable(t.String()),
  model: Nullable(t.String()),
  endpoint: t.String(),
  client: Nullable(t.String({ description: "User-Agent" })),
  clientIp: Nullable(t.String()),
  status: t.String({ description: "success | error | cancelled" }),
  httpStatus: Nullable(t.Integer()),
  errorCode: Nullable(t.String()),
  errorMessage: Nullable(t.String()),
  inputTokens: Nullable(t.Integer()),
  cachedInputTokens: Nullable(t.Integer()),
  outputTokens: Nullable(t.Integer()),
  reasoningTokens: Nullable(t.Integer()),
  latencyMs: Nullable(t.Integer()),
  ttfbMs: Nullable(t.Integer()),
  queueMs: Nullable(t.Integer({ description: "Time waiting for a stream slot on an account" })),
  costUsd: Nullable(
    t.Number({ description: "USD: stored, else priced from the tokens (null: unknown model)" }),
  ),
  responseId: Nullable(t.String()),
  reasoningEffort: Nullable(t.String()),
  transport: t.String({ description: "The client's transport: http | websocket" }),
  upstreamTransport: Nullable(
    t.String({ description: "Transport used towards the upstream: http | websocket (null: none)" }),
  ),
  kind: t.String({
    description:
      "compact (a remote compaction: the compact endpoints, or a turn whose last input item is compaction_trigger) | response",
  }),
});

const Query = t.Object({
  ...pageQuery(50, 500),
  accountId: t.Optional(t.String({ minLength: 1 })),
  apiKeyId: t.Optional(t.String({ minLength: 1 })),
  model: t.Optional(t.String({ minLength: 1 })),
  endpoint: t.Optional(t.String({ minLength: 1, description: "Exact path, e.g. /v1/responses" })),
  requestId: t.Optional(t.String({ minLength: 1, description: "Exact request id (x-request-id)" })),
  status: t.Optional(t.Union([t.Literal("success"), t.Literal("error"), t.Literal("cancelled")])),
  kind: t.Optional(t.Union([t.Literal("compact"), t.Literal("response")])),
  since: t.Optional(t.String({ description: "ISO 8601 or epoch milliseconds; inclusive" })),
  until: t.Optional(t.String({ description: "ISO 8601 or epoch milliseconds; exclusive" })),
});

/** `2026-11-30T00:00:00Z` or `1764460800000` → epoch ms; a 400 naming the parameter otherwise. */
export function parseTime(value: string, param: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new GatewayError(
      "validation_error",
      `Invalid query field '${param}': expected ISO 8601 or epoch ms`,
      {
        param,
      },
    );
  }
  return ms;
}

function toItem(r: RequestLogRow) {
  const num = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: Number(r.id),
    requestedAt: Number(r.requested_at),
    requestId: r.request_id,
    accountId: r.account_id,
    apiKeyId: r.api_key_id,
    model: r.model,
    endpoint: r.endpoint,
    client: r.client,
    clientIp: r.client_ip,
    status: r.status,
    httpStatus: num(r.http_status),
    errorCode: r.error_code,
    errorMessage: r.error_message,
    inputTokens: num(r.input_tokens),
    cachedInputTokens: num(r.cached_input_tokens),
    outputTokens: num(r.output_tokens),
    reasoningTokens: num(r.reasoning_tokens),
    latencyMs: num(r.latency_ms),
    ttfbMs: num(r.ttfb_ms),
    queueMs: num(r.queue_ms),
    costUsd:
      r.cost_usd !== null
        ? Number(r.cost_usd)
        : costUsd(r.model, {
            inputTokens: Number(r.input_tokens ?? 0),
            cachedInputTokens: Number(r.cached_input_tokens ?? 0),
            outputTokens: Number(r.output_tokens ?? 0),
          }),
    responseId: r.response_id,
    reasoningEffort: r.reasoning_effort,
    transport: r.transport,
    upstreamTransport: r.upstream_transport,
    kind: r.kind,
  };
}

export function requestLogRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:request-logs" }).get(
    "/api/request-logs",
    async ({ query }) => {
      const limit = query.limit ?? 50;
      const offset = query.offset ?? 0;
      let q = deps.store.db.selectFrom("request_logs");
      if (query.accountId) q = q.where("account_id", "=", query.accountId);
      if (query.apiKeyId) q = q.where("api_key_id", "=", query.apiKeyId);
      if (query.endpoint) q = q.where("endpoint", "=", query.endpoint);
      if (query.requestId) q = q.where("request_id", "=", query.requestId);
      if (query.model) q = q.where("model", "=", query.model);
      if (query.status) q = q.where("status", "=", query.status);
      if (query.kind) q = q.where("kind", "=", query.kind);
      if (query.since) q = q.where("requested_at", ">=", parseTime(query.since, "since"));
      if (query.until) q = q.where("requested_at", "<", parseTime(query.until, "until"));
      const [rows, count] = await Promise.all([
        q
          .selectAll()
          .orderBy("requested_at", "desc")
          .orderBy("id", "desc")
          .limit(limit)
          .offset(offset)
          .execute(),
        q.select((e) => e.fn.countAll<number>().as("n")).executeTakeFirst(),
      ]);
      return { items: rows.map(toItem), total: Number(count?.n ?? 0), limit, offset };
    },
    {
      query: Query,
      detail: { tags: ["request-logs"], summary: "Request log, newest first, with paging and filters" },
      response: {
        200: Page(RequestLogItem),
      },
    },
  );
}
