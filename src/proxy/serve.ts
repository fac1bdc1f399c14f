/**
 * The Responses and Chat Completions routes' own parts of the proxy pipeline
 * (`src/proxy/pipeline.ts`): reading their bodies ({@link readResponses}, {@link readChat}) and
 * answering from the open upstream stream ({@link answerHttp}): shaped for the endpoint and
 * streamed as it comes, or assembled as one JSON answer.
 *
 * @module
 */
import { errorTypeForStatus, GatewayError } from "../core/errors.ts";
import type { UpstreamBody } from "../upstream/client.ts";
import type { OpenStream } from "./attempt.ts";
import { chatToResponses } from "./chat/request.ts";
import { chatCompletion, chatStreamShaper } from "./chat/response.ts";
import { statusForStreamError } from "./failure.ts";
import { type RequestKind, requestKindOf } from "./log-row.ts";
import {
  partsText,
  readBody,
  reasoningEffortOf,
  routingFields,
  serialised,
  toUpstreamPayload,
  upstreamBody,
  upstreamParts,
} from "./payload.ts";
import type { ProxyRequestContext, Settle } from "./pipeline.ts";
import { codexShaper, ResponseCollector, responsesStreamShaper } from "./shapers.ts";
import { drain, ProxyStream, type Shaper, streamedBody } from "./stream.ts";
import {
  checkResponsesTools,
  checkTextFormat,
  type Json,
  optionalBoolean,
  parseBody,
  validateResponsesBody,
} from "./validate.ts";

export type ProxyKind = "codex" | "responses" | "chat" | "compact";

/** What one proxy request asks of the upstream (the pipeline's `read` step makes it). */
export interface ProxySpec {
  readonly kind: ProxyKind;
  readonly model: string;
  /**
   * The body to send upstream (already `toUpstreamPayload`). For the Responses routes its `input`
   * items may hold only the members the gateway reads (see `ReadBody` in payload.ts): what goes
   * upstream is `payloadText`, never this serialised.
   */
  readonly payload: Json;
  /** `payload` as text when already at hand (the client's own bytes when nothing changed). */
  readonly payloadText?: string;
  /**
   * `payloadText` as handed to `fetch`, or a function that makes it at the `fetch` call (see
   * `upstreamBody` in payload.ts).
   */
  readonly payloadBody?: UpstreamBody;
  readonly stream: boolean;
  readonly includeUsage?: boolean;
  readonly reasoningEffort: string | null;
  /**
   * The client's body as sent (for `max_output_tokens` and the like, stripped from `payload`); its
   * `input` items as in `payload`.
   */
  readonly clientBody?: Json;
  /** The payload's fields that steer routing (sticky key, previous response). */
  readonly routing: { readonly promptCacheKey: string | null; readonly previousResponseId: string | null };
  /** A compaction or an ordinary response (the log row's `kind`). */
  readonly requestKind: RequestKind;
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
export function passUpstreamHeaders(from: Headers, to: Record<string, string>): void {
  // Header names come lower-cased from a Headers object.
  from.forEach((value, key) => {
    if (key.startsWith("x-codex-") || PASSED_HEADERS.includes(key)) to[key] = value;
  });
}

/**
 * `read(text)`, with a body nested too deeply to check or re-serialise (the engine's stack runs
 * out: a RangeError, about 100,000 levels for `JSON.stringify`) refused as a 400 rather than a 500.
 * `JSON.parse` and the outline read such a body; checking it or serialising it again does not.
 * The pipeline's `read` step applies it to every route's reader.
 */
export function notTooDeep<T>(read: (text: string) => T, text: string): T {
  try {
    return read(text);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new GatewayError(
      "invalid_request_error",
      "Request body is nested too deeply to be forwarded; flatten its arrays and objects",
    );
  }
}

/** A Responses body (`/backend-api/codex/responses`: always streamed; `/v1/responses`). */
export function readResponses(kind: "codex" | "responses", text: string): ProxySpec {
  const read = readBody(text);
  const body = read.body;
  validateResponsesBody(body);
  checkResponsesTools(body);
  checkTextFormat(body);
  const payload = toUpstreamPayload(body);
  const parts = upstreamParts(body, payload, text, read);
  const payloadText = partsText(parts);
  return {
    kind,
    model: body.model as string,
    payload,
    payloadText,
    payloadBody: upstreamBody(payloadText, text, parts),
    stream: kind === "codex" ? true : (optionalBoolean(body, "stream") ?? false),
    reasoningEffort: reasoningEffortOf(body),
    clientBody: body,
    routing: routingFields(payload),
    requestKind: requestKindOf(payload),
  };
}

/** A Chat Completions body, translated to a Responses one. */
export function readChat(text: string): ProxySpec {
  const raw = parseBody(text);
  const chat = chatToResponses(raw);
  checkTextFormat(chat.body, "response_format.json_schema.schema");
  const payload = toUpstreamPayload(chat.body);
  return {
    kind: "chat",
    model: chat.body.model as string,
    payload,
    ...serialised(payload),
    stream: chat.stream,
    includeUsage: chat.includeUsage,
    reasoningEffort: reasoningEffortOf(chat.body),
    clientBody: raw,
    routing: routingFields(payload),
    requestKind: requestKindOf(payload),
  };
}

/**
 * The answer of a Responses or Chat request: the stream shaped for the endpoint and sent as it
 * comes (`text/event-stream`), or assembled into one JSON answer. `done` settles the request when
 * the stream is over.
 */
export async function answerHttp(
  ctx: ProxyRequestContext,
  open: OpenStream,
  done: Settle,
): Promise<Response> {
  const { deps } = ctx.proxy;
  const spec = ctx.spec!;
  // A plain record: the Response builds its one Headers object from it.
  const headers: Record<string, string> = { ...SSE_HEADERS, "x-request-id": ctx.requestId };
  passUpstreamHeaders(open.headers, headers);

  let shaper: Shaper;
  let collector: ResponseCollector | null = null;
  if (spec.kind === "codex") shaper = codexShaper;
  else if (!spec.stream) shaper = collector = new ResponseCollector();
  else if (spec.kind === "responses") shaper = responsesStreamShaper();
  else shaper = chatStreamShaper(spec.model, spec.includeUsage === true, deps.clock());

  const streamed = spec.kind === "codex" || spec.stream;
  const ps = new ProxyStream(ctx.proxy, open, shaper, (state, status) => {
    // A streamed answer is a 200 whatever happens inside; an assembled one carries the error's status.
    const failed = !streamed && state.terminal !== "completed" && state.terminal !== "incomplete";
    const httpStatus = failed ? statusForStreamError(state.errorCode, null) : 200;
    return done(ctx, { status, httpStatus, state, ttfbMs: ctx.ttfbMs, account: open.account });
  });
  if (streamed) {
    // A client that goes away cancels this body, which aborts the stream: no signal listener.
    const keepaliveMs = deps.settings.sseKeepaliveSeconds * 1000;
    return new Response(await streamedBody(ps, keepaliveMs, deps.time), { status: 200, headers });
  }
  ctx.signal.addEventListener("abort", () => ps.abort(), { once: true });

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
  const jsonHeaders: Record<string, string> = {
    "content-type": "application/json",
    "x-request-id": ctx.requestId,
  };
  passUpstreamHeaders(open.headers, jsonHeaders);
  return new Response(JSON.stringify(body), { status: 200, headers: jsonHeaders });
}
