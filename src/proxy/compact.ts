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
import { errorTypeForStatus, GatewayError } from "../core/errors.ts";
import type { OpenStream } from "./attempt.ts";
import { statusForStreamError } from "./failure.ts";
import { reasoningEffortOf, routingFields, serialised, toUpstreamPayload } from "./payload.ts";
import type { ProxyRequestContext, Settle } from "./pipeline.ts";
import { type ProxySpec, passUpstreamHeaders } from "./serve.ts";
import { ResponseCollector } from "./shapers.ts";
import { drain, type FinishStatus, ProxyStream, type StreamState } from "./stream.ts";
import {
  badField,
  checkResponsesTools,
  checkTextFormat,
  isObject,
  type Json,
  parseBody,
  requireModel,
  validateResponsesBody,
} from "./validate.ts";

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

/** A compaction body: checked, and the upstream body made from it (see {@link compactPayload}). */
export function readCompact(text: string): ProxySpec {
  const body = parseBody(text);
  validateCompactBody(body);
  checkResponsesTools(body);
  checkTextFormat(body);
  const payload = compactPayload(body);
  return {
    kind: "compact",
    model: body.model as string,
    payload,
    ...serialised(payload),
    stream: false,
    reasoningEffort: reasoningEffortOf(body),
    clientBody: body,
    routing: routingFields(payload),
    requestKind: "compact",
  };
}

/**
 * The answer of a compaction: the stream assembled, its compaction item returned as
 * `{"object":"response.compaction","output":[item],...}`; any other end is an error (a timeout
 * when the budget ran out). `done` settles the request either way; the client's answer waits for it.
 */
export async function answerCompact(
  ctx: ProxyRequestContext,
  open: OpenStream,
  done: Settle,
): Promise<Response> {
  const collector = new ResponseCollector();
  let finished: { state: StreamState; status: FinishStatus } | null = null;
  const ps = new ProxyStream(ctx.proxy, open, collector, (state, status) => {
    finished = { state, status };
  });
  ctx.signal.addEventListener("abort", () => ps.abort(), { once: true });
  await drain(ps);
  const state = ps.state;
  const result = collector.result(state);
  const end = finished as { state: StreamState; status: FinishStatus } | null;

  const items = Array.isArray(result?.output) ? result.output.filter(isObject) : [];
  const item = items.find((i) => COMPACTION_TYPES.has(String(i.type)));
  if (state.terminal !== "completed" || !result || !item) {
    const err = ctx.timedOut
      ? budgetError(ctx)
      : state.terminal === "completed"
        ? new GatewayError("upstream_error", "The upstream answered without a compaction item")
        : upstreamStreamError(state);
    await done(ctx, {
      status: end?.status === "cancelled" && !ctx.timedOut ? "cancelled" : "error",
      httpStatus: err.status,
      state,
      errorCode: err.code,
      errorMessage: err.message,
      account: open.account,
    });
    throw err;
  }
  await done(ctx, { status: "success", httpStatus: 200, state, account: open.account });
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-request-id": ctx.requestId,
  };
  passUpstreamHeaders(open.headers, headers);
  return new Response(
    JSON.stringify({
      id: result.id ?? state.responseId,
      object: "response.compaction",
      created_at: result.created_at ?? Math.floor(ctx.requestedAt / 1000),
      status: result.status ?? "completed",
      output: [item],
      usage: result.usage ?? null,
    }),
    { status: 200, headers },
  );
}

/** The error of a compaction whose budget (`CODEX_LB_COMPACT_BUDGET_SECONDS`) ran out. */
export function budgetError(ctx: ProxyRequestContext): GatewayError {
  return new GatewayError(
    "upstream_timeout",
    `Compaction did not finish within ${ctx.proxy.deps.settings.compactBudgetSeconds} s`,
  );
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
