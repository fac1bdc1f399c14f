/**
 * The request-log row of one proxied request (one HTTP request, one compaction, or one WebSocket
 * turn), built from what the request learned: who asked, which account served, how it travelled,
 * and the usage the stream reported.
 *
 * @module
 */
import { costUsd } from "../access/index.ts";
import type { NewRequestLogRow } from "../store/schema.ts";
import type { FinishStatus, StreamState } from "./stream.ts";

export type Transport = "http" | "websocket";

/** What a request asked of the upstream: a remote compaction, or an ordinary response. */
export type RequestKind = "compact" | "response";

/**
 * `compact` when a Responses body asks for a compaction: its last input item is
 * `compaction_trigger` (how the Codex CLI compacts in-band, remote compaction v2), else `response`.
 */
export function requestKindOf(body: unknown): RequestKind {
  const input = (body as { input?: unknown } | null)?.input;
  if (!Array.isArray(input) || input.length === 0) return "response";
  const last = input[input.length - 1] as { type?: unknown } | null;
  return last !== null && typeof last === "object" && last.type === "compaction_trigger"
    ? "compact"
    : "response";
}

export interface LogFacts {
  readonly requestedAt: number;
  readonly requestId: string;
  readonly accountId: string | null;
  readonly apiKeyId: string | null;
  readonly model: string;
  readonly endpoint: string;
  readonly client: string | null;
  readonly clientIp: string | null;
  readonly status: FinishStatus;
  readonly httpStatus: number;
  readonly state?: StreamState;
  readonly errorCode?: string | null;
  readonly errorMessage?: string | null;
  readonly latencyMs: number;
  readonly ttfbMs?: number | null;
  /** Time spent waiting for a stream slot (null when the request never reached an account). */
  readonly queueMs?: number | null;
  readonly sessionKey: string | null;
  readonly reasoningEffort: string | null;
  readonly transport: Transport;
  /** Null when no upstream call was made. */
  readonly upstreamTransport: Transport | null;
  readonly kind: RequestKind;
}

/** The fields of a proxied request's access log line (one per request or WebSocket turn). */
export function accessFields(
  f: LogFacts & { readonly method: string; readonly attempts: number; readonly account: string | null },
) {
  const u = f.state?.usage ?? null;
  return {
    requestId: f.requestId,
    method: f.method,
    path: f.endpoint,
    kind: f.kind,
    transport: f.transport,
    upstreamTransport: f.upstreamTransport,
    model: f.model,
    accountId: f.accountId,
    account: f.account,
    apiKeyId: f.apiKeyId,
    status: f.httpStatus,
    outcome: f.status,
    errorCode: f.errorCode ?? f.state?.errorCode ?? null,
    attempts: f.attempts,
    ttfbMs: f.ttfbMs ?? null,
    ms: f.latencyMs,
    inputTokens: u?.inputTokens ?? null,
    cachedInputTokens: u?.cachedInputTokens ?? null,
    outputTokens: u?.outputTokens ?? null,
    reasoningTokens: u?.reasoningTokens ?? null,
  };
}

export function logRow(f: LogFacts): NewRequestLogRow {
  const u = f.state?.usage ?? null;
  return {
    requested_at: f.requestedAt,
    request_id: f.requestId,
    account_id: f.accountId,
    api_key_id: f.apiKeyId,
    model: f.model,
    endpoint: f.endpoint,
    client: f.client,
    client_ip: f.clientIp,
    status: f.status,
    http_status: f.httpStatus,
    error_code: f.errorCode ?? f.state?.errorCode ?? null,
    error_message: (f.errorMessage ?? f.state?.errorMessage ?? null)?.slice(0, 1000) ?? null,
    input_tokens: u?.inputTokens ?? null,
    cached_input_tokens: u?.cachedInputTokens ?? null,
    output_tokens: u?.outputTokens ?? null,
    reasoning_tokens: u?.reasoningTokens ?? null,
    cost_usd: u
      ? costUsd(f.model, {
          inputTokens: u.inputTokens ?? 0,
          cachedInputTokens: u.cachedInputTokens ?? 0,
          outputTokens: u.outputTokens ?? 0,
        })
      : null,
    latency_ms: f.latencyMs,
    ttfb_ms: f.ttfbMs ?? null,
    queue_ms: f.queueMs === undefined || f.queueMs === null ? null : Math.round(f.queueMs),
    response_id: f.state?.responseId ?? null,
    session_key: f.sessionKey,
    reasoning_effort: f.reasoningEffort,
    transport: f.transport,
    upstream_transport: f.upstreamTransport,
    kind: f.kind,
  };
}
