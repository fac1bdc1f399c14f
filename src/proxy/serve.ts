/**
 * Serves one proxied request end to end: opens the upstream stream (with failover), shapes it for
 * the endpoint, streams it or assembles the JSON answer, and when it is over releases the lease,
 * queues the request-log row and fires `request.completed`.
 *
 * @module
 */
import { authorizeProxyRequest } from "../access/index.ts";
import { errorTypeForStatus, GatewayError } from "../core/errors.ts";
import { emailHash } from "../core/logging.ts";
import { infoOf } from "../core/request-info.ts";
import type { AccountSnapshot } from "../core/types.ts";
import { type AttemptTrace, openUpstream } from "./attempt.ts";
import { chatCompletion, chatStreamShaper } from "./chat/response.ts";
import type { ProxyContext } from "./context.ts";
import { statusForStreamError } from "./failure.ts";
import { type LogFacts, logRow, requestKindOf } from "./log-row.ts";
import { observeFinished } from "./observe.ts";
import { routingFields } from "./payload.ts";
import { codexShaper, ResponseCollector, responsesStreamShaper } from "./shapers.ts";
import {
  drain,
  type FinishStatus,
  ProxyStream,
  type Shaper,
  type StreamState,
  toReadableStream,
} from "./stream.ts";
import type { Json } from "./validate.ts";

export type ProxyKind = "codex" | "responses" | "chat";

export interface ProxySpec {
  readonly kind: ProxyKind;
  /** The path, for the log row. */
  readonly endpoint: string;
  readonly model: string;
  /** The body to send upstream (already `toUpstreamPayload`). */
  readonly payload: Json;
  /** `payload` as text when already at hand (the client's own bytes when nothing changed). */
  readonly payloadText?: string;
  readonly stream: boolean;
  readonly includeUsage?: boolean;
  readonly reasoningEffort: string | null;
  /** The client's body as sent (for `max_output_tokens` and the like, stripped from `payload`). */
  readonly clientBody?: Json;
}

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/** Upstream response headers worth passing on to the client (besides every `x-codex-*` one). */
const PASSED_HEADERS = ["openai-model"];

/**
 * Copies the upstream headers a client may read: Codex's own (`x-codex-turn-state`, the quota
 * windows `x-codex-primary-*` / `x-codex-secondary-*`, `x-codex-credits-*`) and `openai-model`.
 */
export function passUpstreamHeaders(from: Headers, to: Headers): void {
  from.forEach((value, key) => {
    const k = key.toLowerCase();
    if (k.startsWith("x-codex-") || PASSED_HEADERS.includes(k)) to.set(k, value);
  });
}

export async function serveProxy(ctx: ProxyContext, request: Request, spec: ProxySpec): Promise<Response> {
  const { deps } = ctx;
  const info = infoOf(request);
  info.accessLogged = true;
  const requestedAt = deps.clock();
  const t0 = info.startedAt;
  const trace: AttemptTrace = { accountId: null, attempts: 0 };
  const client = request.headers.get("user-agent");
  const writeLog = (fields: {
    status: FinishStatus;
    httpStatus: number;
    state?: StreamState;
    errorCode?: string | null;
    errorMessage?: string | null;
    ttfbMs?: number | null;
  }) => {
    const u = fields.state?.usage ?? null;
    const latencyMs = Math.round(performance.now() - t0);
    // The access line of a proxied request: written when the answer is over (a stream's end), so it
    // carries the account, the tokens and both timings; the app's generic line skips these requests.
    deps.log.info(
      {
        requestId: info.requestId,
        method: request.method,
        path: spec.endpoint,
        endpoint: spec.kind,
        kind: requestKindOf(spec.payload),
        model: spec.model,
        accountId: trace.accountId,
        account: emailHash(trace.accountEmail ?? null),
        apiKeyId: info.apiKeyId ?? null,
        status: fields.httpStatus,
        outcome: fields.status,
        errorCode: fields.errorCode ?? fields.state?.errorCode ?? null,
        attempts: trace.attempts,
        ttfbMs: fields.ttfbMs ?? null,
        ms: latencyMs,
        inputTokens: u?.inputTokens ?? null,
        cachedInputTokens: u?.cachedInputTokens ?? null,
        outputTokens: u?.outputTokens ?? null,
        reasoningTokens: u?.reasoningTokens ?? null,
      },
      "request",
    );
    const facts: LogFacts = {
      ...fields,
      requestedAt,
      requestId: info.requestId,
      accountId: trace.accountId,
      apiKeyId: info.apiKeyId ?? null,
      model: spec.model,
      endpoint: spec.endpoint,
      client,
      clientIp: info.clientIp ?? info.peerIp,
      latencyMs,
      queueMs: trace.queueMs ?? null,
      sessionKey: routingFields(spec.payload).promptCacheKey,
      reasoningEffort: spec.reasoningEffort,
      transport: "http",
      upstreamTransport: trace.attempts > 0 ? "http" : null,
      kind: requestKindOf(spec.payload),
    };
    const row = logRow(facts);
    ctx.logs.add(row);
    observeFinished(deps, {
      ...facts,
      family: spec.kind,
      method: request.method,
      attempts: trace.attempts,
      costUsd: row.cost_usd ?? null,
      headers: request.headers,
    });
  };
  const completed = (account: AccountSnapshot | null, ok: boolean, httpStatus: number) => {
    void deps.services
      .fire("request.completed", { requestId: info.requestId, account, ok, httpStatus, now: deps.clock() })
      .catch((e) => deps.log.warn({ err: String(e), requestId: info.requestId }, "request.completed failed"));
  };

  const routing = routingFields(spec.payload);
  const abort = new AbortController();
  const onClientAbort = () => abort.abort();
  request.signal?.addEventListener("abort", onClientAbort, { once: true });
  let open: Awaited<ReturnType<typeof openUpstream>>;
  try {
    // The key's model list and usage limits (a keyless local request has none).
    await authorizeProxyRequest({
      db: deps.store.db,
      apiKeyId: info.apiKeyId,
      model: spec.model,
      now: requestedAt,
      cache: deps.access.keyStates,
      reserve: {
        reservations: deps.access.reservations,
        request: {
          requestId: info.requestId,
          model: spec.model,
          payload: spec.payload,
          ...(spec.payloadText === undefined ? {} : { payloadText: spec.payloadText }),
          body: spec.clientBody,
        },
      },
    });
    open = await openUpstream(
      ctx,
      {
        requestId: info.requestId,
        model: spec.model,
        payload: spec.payload,
        payloadText: spec.payloadText,
        clientHeaders: request.headers,
        signal: abort.signal,
        promptCacheKey: routing.promptCacheKey,
        previousResponseId: routing.previousResponseId,
      },
      trace,
    );
  } catch (e) {
    request.signal?.removeEventListener("abort", onClientAbort);
    const gw = e instanceof GatewayError ? e : null;
    writeLog({
      status: abort.signal.aborted ? "cancelled" : "error",
      httpStatus: gw?.status ?? 500,
      errorCode: gw?.code ?? "server_error",
      errorMessage: e instanceof Error ? e.message : String(e),
    });
    completed(null, false, gw?.status ?? 500);
    throw e;
  }
  const ttfbMs = Math.round(performance.now() - t0);
  const headers = new Headers({ ...SSE_HEADERS, "x-request-id": info.requestId });
  passUpstreamHeaders(open.headers, headers);

  let shaper: Shaper;
  let collector: ResponseCollector | null = null;
  if (spec.kind === "codex") shaper = codexShaper;
  else if (!spec.stream) shaper = collector = new ResponseCollector();
  else if (spec.kind === "responses") shaper = responsesStreamShaper();
  else shaper = chatStreamShaper(spec.model, spec.includeUsage === true, deps.clock());

  const streamed = spec.kind === "codex" || spec.stream;
  const ps = new ProxyStream(ctx, open, shaper, (state, status) => {
    request.signal?.removeEventListener("abort", onClientAbort);
    // A streamed answer is a 200 whatever happens inside; an assembled one carries the error's status.
    const failed = !streamed && state.terminal !== "completed" && state.terminal !== "incomplete";
    const httpStatus = failed ? statusForStreamError(state.errorCode, null) : 200;
    writeLog({ status, httpStatus, state, ttfbMs });
    completed(open.account, status === "success", httpStatus);
  });
  abort.signal.addEventListener("abort", () => ps.abort(), { once: true });

  if (streamed) {
    const keepaliveMs = deps.settings.sseKeepaliveSeconds * 1000;
    return new Response(toReadableStream(ps, keepaliveMs), { status: 200, headers });
  }

  await drain(ps);
  const state = ps.state;
  const result = collector!.result(state);
  if (state.terminal === "failed" || !result) {
    // The log row was written at the end of the stream; the client gets the error as JSON.
    const err = new GatewayError("server_error", state.errorMessage ?? "Upstream error");
    const status = statusForStreamError(state.errorCode, null);
    throw Object.assign(err, {
      code: state.errorCode ?? "upstream_error",
      status,
      type: errorTypeForStatus(status),
    });
  }
  const body = spec.kind === "chat" ? chatCompletion(result, spec.model, state, deps.clock()) : result;
  const jsonHeaders = new Headers({ "content-type": "application/json", "x-request-id": info.requestId });
  passUpstreamHeaders(open.headers, jsonHeaders);
  return new Response(JSON.stringify(body), { status: 200, headers: jsonHeaders });
}
