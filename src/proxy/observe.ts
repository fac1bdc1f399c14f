/**
 * What every finished proxied request (HTTP request, compaction, WebSocket turn) reports besides
 * its access line and log row: the Prometheus series and, when trace export is on, its span.
 *
 * @module
 */
import type { AppDeps } from "../core/deps.ts";
import type { LogFacts } from "./log-row.ts";

/** The endpoint family of a proxied path: the `endpoint` label of the metrics and spans. */
export type EndpointKind = "responses" | "chat" | "codex" | "compact";

export function endpointKind(path: string): EndpointKind {
  if (path.endsWith("/compact")) return "compact";
  if (path.startsWith("/backend-api/")) return "codex";
  if (path.endsWith("/chat/completions")) return "chat";
  return "responses";
}

export function observeFinished(
  deps: Pick<AppDeps, "metrics" | "tracing">,
  f: LogFacts & {
    /** The endpoint family (the metrics' `endpoint` label); `kind` is the request's own (compact or not). */
    readonly family: EndpointKind;
    readonly method: string;
    readonly attempts: number;
    readonly costUsd: number | null;
    /** The client's request headers (for its W3C trace context). */
    readonly headers: Headers;
  },
): void {
  const u = f.state?.usage ?? null;
  const ttfbMs = f.ttfbMs ?? null;
  deps.metrics?.request({
    endpoint: f.family,
    status: f.httpStatus,
    model: f.model,
    accountId: f.accountId,
    apiKeyId: f.apiKeyId,
    durationMs: f.latencyMs,
    ttfbMs,
    inputTokens: u?.inputTokens ?? null,
    cachedInputTokens: u?.cachedInputTokens ?? null,
    outputTokens: u?.outputTokens ?? null,
    reasoningTokens: u?.reasoningTokens ?? null,
    costUsd: f.costUsd,
  });
  deps.tracing?.requestDone({
    requestId: f.requestId,
    method: f.method,
    path: f.endpoint,
    endpoint: f.family,
    model: f.model,
    accountId: f.accountId,
    apiKeyId: f.apiKeyId,
    httpStatus: f.httpStatus,
    outcome: f.status,
    errorCode: f.errorCode ?? f.state?.errorCode ?? null,
    attempts: f.attempts,
    startedAt: f.requestedAt,
    durationMs: f.latencyMs,
    ttfbMs,
    inputTokens: u?.inputTokens ?? null,
    cachedInputTokens: u?.cachedInputTokens ?? null,
    outputTokens: u?.outputTokens ?? null,
    reasoningTokens: u?.reasoningTokens ?? null,
    transport: f.transport,
    traceparent: f.headers.get("traceparent"),
    tracestate: f.headers.get("tracestate"),
  });
}
