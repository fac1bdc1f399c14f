/**
 * Remote compaction (`POST /backend-api/codex/responses/compact`, `POST /v1/responses/compact`).
 * The ChatGPT backend has no compact endpoint any more: the body goes to `/codex/responses` as an
 * ordinary streamed turn (`stream=true`, `store=false`) whose input ends with a
 * `{"type":"compaction_trigger"}` item, and the answer's compaction item is returned as
 * `{"object":"response.compaction","output":[item],...}`. The item's `encrypted_content` is opaque
 * and only the account that made it can read it back, so the call is routed like the session it
 * belongs to (turn state, session id, prompt_cache_key) and the item is passed on untouched.
 * Failover happens only before the first event, over at most two accounts, within its own budget.
 *
 * @module
 */
import { authorizeProxyRequest } from "../access/index.ts";
import { errorTypeForStatus, GatewayError } from "../core/errors.ts";
import { emailHash } from "../core/logging.ts";
import { infoOf } from "../core/request-info.ts";
import { type AttemptTrace, openUpstream } from "./attempt.ts";
import type { ProxyContext } from "./context.ts";
import { statusForStreamError } from "./failure.ts";
import { accessFields, type LogFacts, logRow } from "./log-row.ts";
import { observeFinished } from "./observe.ts";
import { reasoningEffortOf, routingFields, toUpstreamPayload } from "./payload.ts";
import { passUpstreamHeaders } from "./serve.ts";
import { ResponseCollector } from "./shapers.ts";
import { drain, type FinishStatus, ProxyStream, type StreamState } from "./stream.ts";
import { badField, isObject, type Json, requireModel, validateResponsesBody } from "./validate.ts";

/** Accounts a compaction may try (its item is bound to one account: little point in more). */
export const COMPACT_MAX_ACCOUNTS = 2;

/** Output item types that carry a compaction (the second is an older name of the first). */
const COMPACTION_TYPES = new Set(["compaction", "compaction_summary"]);

const TRIGGER = { type: "compaction_trigger" } as const;

/** Checks a compaction body: `model` and `input` are required (the history to compact). */
export function validateCompactBody(body: Json): void {
  requireModel(body);
  if (body.input === undefined || body.input === null) {
    throw badField("input", "'input' is required (the conversation items to compact)");
  }
  validateResponsesBody(body);
}

/** The upstream body: a streamed, unstored turn whose last input item is the compaction trigger. */
export function compactPayload(body: Json): Json {
  const payload = toUpstreamPayload(body);
  const input = Array.isArray(payload.input) ? [...payload.input] : [];
  const last = input.at(-1);
  if (!(isObject(last) && last.type === TRIGGER.type)) input.push({ ...TRIGGER });
  payload.input = input;
  payload.stream = true;
  payload.store = false;
  return payload;
}

/** Serves one compaction; `endpoint` is the path, for the log row. */
export async function serveCompact(
  ctx: ProxyContext,
  request: Request,
  body: Json,
  endpoint: string,
): Promise<Response> {
  const { deps } = ctx;
  const info = infoOf(request);
  // This request writes its own access line (with the account and tokens) when it is over.
  info.accessLogged = true;
  const requestedAt = deps.clock();
  const t0 = info.startedAt;
  const model = body.model as string;
  const payload = compactPayload(body);
  const routing = routingFields(payload);
  const trace: AttemptTrace = { accountId: null, attempts: 0 };
  const budgetMs = deps.settings.compactBudgetSeconds * 1000;
  const abort = new AbortController();
  let timedOut = false;
  const budget = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, budgetMs);
  const onClientAbort = () => abort.abort();
  request.signal?.addEventListener("abort", onClientAbort, { once: true });

  let logged = false;
  const writeLog = (status: FinishStatus, httpStatus: number, state?: StreamState, err?: GatewayError) => {
    logged = true;
    const facts: LogFacts = {
      requestedAt,
      requestId: info.requestId,
      accountId: trace.accountId,
      apiKeyId: info.apiKeyId ?? null,
      model,
      endpoint,
      client: request.headers.get("user-agent"),
      clientIp: info.clientIp ?? info.peerIp,
      status,
      httpStatus,
      state,
      errorCode: err?.code ?? null,
      errorMessage: err?.message ?? null,
      latencyMs: Math.round(performance.now() - t0),
      queueMs: trace.queueMs ?? null,
      sessionKey: routing.promptCacheKey,
      reasoningEffort: reasoningEffortOf(body),
      transport: "http",
      upstreamTransport: trace.attempts > 0 ? "http" : null,
      kind: "compact",
    };
    deps.log.info(
      accessFields({
        ...facts,
        method: request.method,
        attempts: trace.attempts,
        account: emailHash(trace.accountEmail ?? null),
      }),
      "request",
    );
    const row = logRow(facts);
    ctx.logs.add(row);
    observeFinished(deps, {
      ...facts,
      family: "compact",
      method: request.method,
      attempts: trace.attempts,
      costUsd: row.cost_usd ?? null,
      headers: request.headers,
    });
  };
  const timeoutError = () =>
    new GatewayError(
      "upstream_timeout",
      `Compaction did not finish within ${deps.settings.compactBudgetSeconds} s`,
    );

  try {
    await authorizeProxyRequest({
      db: deps.store.db,
      apiKeyId: info.apiKeyId,
      model,
      now: requestedAt,
      cache: deps.access.keyStates,
      reserve: {
        reservations: deps.access.reservations,
        request: { requestId: info.requestId, model, payload, body },
      },
    });
    let open: Awaited<ReturnType<typeof openUpstream>>;
    try {
      open = await openUpstream(
        ctx,
        {
          requestId: info.requestId,
          model,
          payload,
          clientHeaders: request.headers,
          signal: abort.signal,
          promptCacheKey: routing.promptCacheKey,
          previousResponseId: routing.previousResponseId,
          maxAccounts: COMPACT_MAX_ACCOUNTS,
        },
        trace,
      );
    } catch (e) {
      throw timedOut ? timeoutError() : e;
    }
    const collector = new ResponseCollector();
    let finished: { state: StreamState; status: FinishStatus } | null = null;
    const ps = new ProxyStream(ctx, open, collector, (state, status) => {
      finished = { state, status };
    });
    abort.signal.addEventListener("abort", () => ps.abort(), { once: true });
    await drain(ps);
    const state = ps.state;
    const result = collector.result(state);
    const done = finished as { state: StreamState; status: FinishStatus } | null;
    const fire = (ok: boolean, httpStatus: number) =>
      void deps.services
        .fire("request.completed", {
          requestId: info.requestId,
          account: open.account,
          ok,
          httpStatus,
          now: deps.clock(),
        })
        .catch((e) =>
          deps.log.warn({ err: String(e), requestId: info.requestId }, "request.completed failed"),
        );

    const items = Array.isArray(result?.output) ? result.output.filter(isObject) : [];
    const item = items.find((i) => COMPACTION_TYPES.has(String(i.type)));
    if (state.terminal !== "completed" || !result || !item) {
      const err = timedOut
        ? timeoutError()
        : state.terminal === "completed"
          ? new GatewayError("upstream_error", "The upstream answered without a compaction item")
          : upstreamStreamError(state);
      writeLog(done?.status === "cancelled" && !timedOut ? "cancelled" : "error", err.status, state, err);
      fire(false, err.status);
      throw err;
    }
    writeLog("success", 200, state);
    fire(true, 200);
    const headers = new Headers({ "content-type": "application/json", "x-request-id": info.requestId });
    passUpstreamHeaders(open.headers, headers);
    return new Response(
      JSON.stringify({
        id: result.id ?? state.responseId,
        object: "response.compaction",
        created_at: result.created_at ?? Math.floor(requestedAt / 1000),
        status: result.status ?? "completed",
        output: [item],
        usage: result.usage ?? null,
      }),
      { status: 200, headers },
    );
  } catch (e) {
    // Refused before the stream opened (the stream's own failures are logged above).
    if (!logged) {
      const status = e instanceof GatewayError ? e.status : 500;
      writeLog(
        abort.signal.aborted && !timedOut ? "cancelled" : "error",
        status,
        undefined,
        e instanceof GatewayError ? e : new GatewayError("server_error", String(e)),
      );
    }
    throw e;
  } finally {
    clearTimeout(budget);
    request.signal?.removeEventListener("abort", onClientAbort);
  }
}

/** The error of a stream that ended without `response.completed`. */
function upstreamStreamError(state: StreamState): GatewayError {
  const status = statusForStreamError(state.errorCode, null);
  const err = new GatewayError("server_error", state.errorMessage ?? "Upstream error");
  return Object.assign(err, {
    code: state.errorCode ?? "upstream_error",
    status,
    type: errorTypeForStatus(status),
  });
}
