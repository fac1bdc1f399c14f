/**
 * The proxy request path, top to bottom: one pipeline of named steps over one typed context.
 *
 *     admit → read → authorize → attempt (select ⇄ call, failover) → answer (stream | assemble) → settle
 *
 * - {@link admit}: firewall hook, origin and content checks, API key (the same admission every
 *   request passes, `src/access/admission.ts`); a refusal answers at once.
 * - {@link read}: the body, read and checked for the route (a bad one is a 400 naming the field);
 *   gives the {@link ProxySpec}: model, the payload for the upstream, streamed or not.
 * - {@link authorize}: the key's model list and usage limits, and a reservation against them.
 * - {@link attempt}: select an account (`account.select` hook), hold a lease, call the upstream,
 *   look at its first event; on a failure the `upstream.failed` hook decides on failover to the
 *   next account (`src/proxy/attempt.ts`, `src/proxy/select.ts`).
 * - {@link answer}: the route's answer from the open stream: passed through as it comes, or
 *   assembled as one JSON answer (`src/proxy/serve.ts`, `src/proxy/compact.ts`).
 * - {@link settle}: once the answer is over (a stream's end, or a failure at any step past `read`):
 *   the request-log row (which settles the key's reservation: the client sees its answer end only
 *   once that is committed) and the `request.completed` hook, then, once this turn's answers are
 *   out, the access line, metrics and span. Exactly once per request.
 *
 * Everything a request learns travels in its {@link ProxyRequestContext}, created once when the
 * request arrives and handed to every step; what all requests share (settings, store,
 * services, the clock, randomness and timers) is in its `proxy` ({@link ProxyContext}). The
 * gateway serves the proxy's POST routes through here directly, without the web framework's
 * dispatch ({@link proxyRoutes} lists them; `src/app/app.ts` matches them). A WebSocket turn
 * (`src/proxy/ws/session.ts`) is a proxied request too: it gets its own {@link ProxyRequestContext}
 * and goes through {@link authorize}, the same attempt loop and {@link settle}; only its reading
 * (one message) and its answer (text frames) are its own.
 *
 * @module
 */

import type { Admit } from "../access/admission.ts";
import { requireJsonContentType } from "../access/csrf.ts";
import { authorizeProxyRequest } from "../access/index.ts";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { ACCESS_MESSAGE, emailHash } from "../core/logging.ts";
import type { RequestInfo } from "../core/request-info.ts";
import type { AccountSnapshot, EpochMs } from "../core/types.ts";
import { type AttemptTrace, type OpenStream, openUpstream } from "./attempt.ts";
import { answerCompact, budgetError, COMPACT_MAX_ACCOUNTS, readCompact } from "./compact.ts";
import type { ProxyContext } from "./context.ts";
import { accessFields, type LogFacts, logRow, type Transport } from "./log-row.ts";
import { type EndpointKind, observeFinished } from "./observe.ts";
import { answerHttp, notTooDeep, type ProxySpec, readChat, readResponses } from "./serve.ts";
import type { FinishStatus, StreamState } from "./stream.ts";
import type { Json } from "./validate.ts";

/** One proxy POST route: where it is, how its body is read, how its answer is made. */
export interface ProxyRoute {
  readonly path: string;
  /** The endpoint family (metrics' `endpoint` label, the access line's `endpoint`). */
  readonly family: EndpointKind;
  /** What the OpenAPI document says of it. */
  readonly summary: string;
  /** Reads and checks the body (the route's {@link read}). */
  read(ctx: ProxyRequestContext, text: string): ProxySpec;
  /** The client's answer from the open stream (the route's {@link answer}); calls `done` when over. */
  answer(ctx: ProxyRequestContext, open: OpenStream, done: Settle): Promise<Response>;
}

/**
 * How a route's answer reports that the request is over (see {@link settle}): the client may see
 * the end of its answer once what this returns has settled.
 */
export type Settle = (ctx: ProxyRequestContext, outcome: Outcome) => Promise<unknown> | undefined;

/** How a request ended, for {@link settle}. */
export interface Outcome {
  readonly status: FinishStatus;
  readonly httpStatus: number;
  /** The account that served (null: none did). */
  readonly account: AccountSnapshot | null;
  readonly state?: StreamState;
  readonly errorCode?: string | null;
  readonly errorMessage?: string | null;
  readonly ttfbMs?: number | null;
  /** False: `request.completed` is not fired (a compaction refused before its stream opened). */
  readonly fire?: boolean;
}

/** The proxy's POST routes, served by {@link serveProxyRequest}. */
export const proxyRoutes: readonly ProxyRoute[] = [
  {
    path: "/backend-api/codex/responses",
    family: "codex",
    summary: "Codex CLI Responses endpoint (always SSE)",
    read: (_ctx, text) => readResponses("codex", text),
    answer: (ctx, open, done) => answerHttp(ctx, open, done),
  },
  {
    path: "/v1/responses",
    family: "responses",
    summary: "OpenAI Responses API (stream or JSON)",
    read: (_ctx, text) => readResponses("responses", text),
    answer: (ctx, open, done) => answerHttp(ctx, open, done),
  },
  {
    path: "/v1/chat/completions",
    family: "chat",
    summary: "OpenAI Chat Completions, translated to Responses",
    read: (_ctx, text) => readChat(text),
    answer: (ctx, open, done) => answerHttp(ctx, open, done),
  },
  {
    path: "/backend-api/codex/responses/compact",
    family: "compact",
    summary:
      "Remote compaction (Codex CLI): the history in `input` comes back as one `response.compaction` item",
    read: (_ctx, text) => readCompact(text),
    answer: (ctx, open, done) => answerCompact(ctx, open, done),
  },
  {
    path: "/v1/responses/compact",
    family: "compact",
    summary: 'Remote compaction (OpenAI shape): answers `{object: "response.compaction", output: [item]}`',
    read: (_ctx, text) => readCompact(text),
    answer: (ctx, open, done) => answerCompact(ctx, open, done),
  },
];

/** What the gateway lends every proxy request: its admission, and how a body is read. */
export interface ProxyGate {
  /** The gateway's admission; null when the request was admitted already (by the framework). */
  readonly admit: Admit | null;
  /** The body as text, within the size limit and the deadline that runs from `startedAt`. */
  readBody(request: Request, startedAt: number): Promise<string>;
}

/**
 * Everything one proxied request knows, from admission to its log row, whatever carried it (an
 * HTTP request, see {@link HttpRequestContext}, or one turn of a Responses WebSocket): the request's
 * facts ({@link RequestInfo}: peer, id, client address, API key) and what each step adds.
 */
export class ProxyRequestContext implements RequestInfo {
  clientIp: string | null = null;
  apiKeyId: string | null = null;
  releaseBodySlot: (() => void) | undefined = undefined;
  authenticated = false;
  /** Set by {@link read}: from then on the request writes its own access line. */
  accessLogged = false;
  /** Aborted when the client goes away (or the route's time budget runs out): stops the upstream call. */
  signal: AbortSignal;
  /** Wall-clock time the request was taken on (set by {@link read}): the log row's `requested_at`. */
  requestedAt: EpochMs = 0;
  /** What the client asked for (set by {@link read}). */
  spec: ProxySpec | null = null;
  /** Which accounts were tried and how long the request queued (filled by {@link attempt}). */
  readonly trace: AttemptTrace = { accountId: null, attempts: 0 };
  /** How the upstream was called (null: not at all); an HTTP request's follows from its attempts. */
  upstreamTransport: Transport | null = null;
  /** The upstream stream that passed its first event (set by {@link attempt}). */
  open: OpenStream | null = null;
  /** Milliseconds from the request's start to its open upstream stream. */
  ttfbMs: number | null = null;
  /** Releases what the request holds until its answer is over (a compaction's budget timer). */
  release: (() => void) | null = null;
  /** Set once {@link settle} ran: a request settles once. */
  settled = false;
  /** The route's budget ran out (compaction): its failure is a timeout, not a cancellation. */
  timedOut = false;

  constructor(
    /** What every request of this gateway shares. */
    readonly proxy: ProxyContext,
    /** `POST`, or `WS` for a WebSocket turn (the access line's method). */
    readonly method: string,
    /** The client's request headers (of the upgrade, for a WebSocket turn). */
    readonly headers: Headers,
    /** The path, for the log row. */
    readonly endpoint: string,
    readonly family: EndpointKind,
    readonly transport: Transport,
    signal: AbortSignal,
    readonly peerIp: string | null,
    public requestId: string,
    /** `performance.now()` when the request arrived (latency, the body deadline). */
    readonly startedAt: number = performance.now(),
  ) {
    this.signal = signal;
  }
}

/** The context of one proxy POST: its Request, its route, and the gate it came through. */
export class HttpRequestContext extends ProxyRequestContext {
  constructor(
    proxy: ProxyContext,
    readonly gate: ProxyGate,
    readonly route: ProxyRoute,
    readonly request: Request,
    peerIp: string | null,
    requestId: string,
    startedAt: number = performance.now(),
  ) {
    super(
      proxy,
      request.method,
      request.headers,
      route.path,
      route.family,
      "http",
      request.signal,
      peerIp,
      requestId,
      startedAt,
    );
  }

  /**
   * The context of a request the framework dispatched (admitted already): its facts copied in, its
   * body read as the gateway guarded it (`info.readBody`).
   */
  static admitted(proxy: ProxyContext, route: ProxyRoute, request: Request, info: RequestInfo) {
    const readBody = info.readBody;
    const gate: ProxyGate = readBody ? { admit: null, readBody: () => readBody() } : ADMITTED;
    const ctx = new HttpRequestContext(
      proxy,
      gate,
      route,
      request,
      info.peerIp,
      info.requestId,
      info.startedAt,
    );
    ctx.clientIp = info.clientIp;
    ctx.apiKeyId = info.apiKeyId ?? null;
    ctx.authenticated = info.authenticated ?? false;
    return ctx;
  }
}

/** The gate of a request admitted by the framework whose body nobody guarded (none, or in-process). */
const ADMITTED: ProxyGate = { admit: null, readBody: (request) => request.text() };

/** A step: reads and writes the context; a Response it returns ends the request. */
export type Step = (ctx: HttpRequestContext) => Promise<Response | undefined> | Response | undefined;

/** The request path, in the order the steps run ({@link settle} runs when the answer is over). */
export const steps: readonly Step[] = [admit, read, authorize, attempt, answer];

/**
 * Serves one proxy request: runs the {@link steps} until one answers. A failure past {@link read} is
 * settled (log row, hook) before it is thrown to the caller, which renders it as a JSON error.
 */
export async function serveProxyRequest(ctx: HttpRequestContext): Promise<Response> {
  try {
    for (const step of steps) {
      const out = step(ctx);
      // A step that answers at once is not awaited (no promise made for it).
      const done = out instanceof Promise ? await out : out;
      if (done) return done;
    }
    throw new Error("no step of the proxy pipeline answered");
  } catch (e) {
    if (ctx.accessLogged && !ctx.settled) await settleFailure(ctx, e);
    throw e;
  } finally {
    ctx.release?.();
  }
}

// ---------------------------------------------------------------------------------------------
// The steps

/** admit: the request's admission (skipped when the framework admitted it already). */
function admit(ctx: HttpRequestContext): Promise<Response | undefined> | Response | undefined {
  const { admit } = ctx.gate;
  if (!admit) return undefined;
  const answer = admit(ctx.request, new URL(ctx.request.url), ctx);
  return answer instanceof Promise ? answer.then((a) => a ?? undefined) : (answer ?? undefined);
}

/**
 * read: the body, checked for the route. The request is then taken on: its wall-clock time is
 * noted, it writes its own access line from here on, and a compaction's time budget starts.
 */
async function read(ctx: HttpRequestContext): Promise<undefined> {
  requireJsonContentType(ctx.request);
  const text = await ctx.gate.readBody(ctx.request, ctx.startedAt);
  ctx.spec = notTooDeep((t) => ctx.route.read(ctx, t), text);
  ctx.accessLogged = true;
  ctx.requestedAt = ctx.proxy.deps.clock();
  if (ctx.family === "compact") startBudget(ctx);
  return undefined;
}

/** authorize: the key's model list and usage limits, with a reservation (a keyless request has none). */
export async function authorize(ctx: ProxyRequestContext): Promise<undefined> {
  const { deps } = ctx.proxy;
  const spec = ctx.spec!;
  await authorizeProxyRequest({
    db: deps.store.db,
    apiKeyId: ctx.apiKeyId,
    model: spec.model,
    now: ctx.requestedAt,
    cache: deps.access.keyStates,
    reserve: {
      reservations: deps.access.reservations,
      request: {
        requestId: ctx.requestId,
        model: spec.model,
        payload: spec.payload,
        ...(spec.payloadText === undefined ? {} : { payloadText: spec.payloadText }),
        body: spec.clientBody,
      },
    },
  });
  return undefined;
}

/**
 * attempt: select an account and call the upstream until a stream opens (failover between
 * accounts before the first byte), or throw the error to answer with.
 */
async function attempt(ctx: HttpRequestContext): Promise<undefined> {
  const spec = ctx.spec!;
  const compact = ctx.family === "compact";
  try {
    ctx.open = await openUpstream(
      ctx.proxy,
      {
        requestId: ctx.requestId,
        model: spec.model,
        payload: spec.payload,
        payloadText: spec.payloadText,
        payloadBody: spec.payloadBody,
        clientHeaders: ctx.headers,
        signal: ctx.signal,
        promptCacheKey: spec.routing.promptCacheKey,
        previousResponseId: spec.routing.previousResponseId,
        ...(compact ? { maxAccounts: COMPACT_MAX_ACCOUNTS } : {}),
      },
      ctx.trace,
    );
    ctx.ttfbMs = Math.round(performance.now() - ctx.startedAt);
  } catch (e) {
    throw ctx.timedOut ? budgetError(ctx) : e;
  }
  ctx.spec = sent(spec);
  return undefined;
}

/**
 * The spec without the body it was read from and sent upstream (`payload`, its text and bytes, the
 * client's body): once the stream is open nothing reads them, and an open stream would otherwise
 * hold a long Codex history (a few hundred KB as text, bytes and parsed JSON) until its end.
 */
function sent(spec: ProxySpec): ProxySpec {
  const { payloadText: _t, payloadBody: _b, clientBody: _c, ...rest } = spec;
  return { ...rest, payload: SENT };
}

/** The `payload` of a spec whose body went upstream (see {@link sent}). */
const SENT: Json = Object.freeze({});

/** answer: the route's answer from the open stream; it settles the request when it is over. */
function answer(ctx: HttpRequestContext): Promise<Response> {
  return ctx.route.answer(ctx, ctx.open!, settle);
}

/**
 * settle: the request is over. One request-log row (its arrival settles the key's reservation) and
 * `request.completed` at once; one access line, the metrics and span in the next turn of the event
 * loop (`afterAnswer`). Runs once. Returns what the client's end of the answer waits for: the
 * reservation's settle, committed with the store's next group commit (a `kill -9` after the
 * client saw its whole answer leaves the request's real usage, not its estimate); undefined when
 * there is nothing to wait for (no reservation, or settled already).
 */
export function settle(ctx: ProxyRequestContext, outcome: Outcome): Promise<unknown> | undefined {
  if (ctx.settled) return undefined;
  ctx.settled = true;
  const { deps } = ctx.proxy;
  const spec = ctx.spec!;
  const facts: LogFacts = {
    requestedAt: ctx.requestedAt,
    requestId: ctx.requestId,
    accountId: ctx.trace.accountId,
    apiKeyId: ctx.apiKeyId ?? null,
    model: spec.model,
    endpoint: ctx.endpoint,
    client: ctx.headers.get("user-agent"),
    clientIp: ctx.clientIp ?? ctx.peerIp,
    status: outcome.status,
    httpStatus: outcome.httpStatus,
    state: outcome.state,
    errorCode: outcome.errorCode ?? null,
    errorMessage: outcome.errorMessage ?? null,
    latencyMs: Math.round(performance.now() - ctx.startedAt),
    ttfbMs: outcome.ttfbMs ?? null,
    queueMs: ctx.trace.queueMs ?? null,
    sessionKey: spec.routing.promptCacheKey,
    reasoningEffort: spec.reasoningEffort,
    transport: ctx.transport,
    upstreamTransport:
      ctx.transport === "http" ? (ctx.trace.attempts > 0 ? "http" : null) : ctx.upstreamTransport,
    kind: spec.requestKind,
  };
  const row = logRow(facts);
  const durable = ctx.proxy.logs.add(row);
  if (outcome.fire !== false)
    completed(ctx.proxy, ctx.requestId, outcome.account, outcome.status === "success", outcome.httpStatus);
  // What only reports the request (its access line, metrics and span) waits until the answers of
  // this turn are out: a stream's last bytes would otherwise wait for it. The log row (a response's
  // owner, the key's reservation settled) and `request.completed` come first, as before.
  ctx.proxy.afterAnswer(() => {
    deps.log.info(accessLine(ctx, facts), ACCESS_MESSAGE);
    observeFinished(deps, {
      ...facts,
      family: ctx.family,
      method: ctx.method,
      attempts: ctx.trace.attempts,
      costUsd: row.cost_usd ?? null,
      headers: ctx.headers,
    });
  });
  return durable;
}

// ---------------------------------------------------------------------------------------------
// Helpers of the steps

/** A failure before the answer started (refused, no account, client gone, a bug): settled here. */
function settleFailure(ctx: ProxyRequestContext, e: unknown): Promise<unknown> | undefined {
  const gw = e instanceof GatewayError ? e : null;
  const cancelled = ctx.signal.aborted && !ctx.timedOut;
  return settle(ctx, {
    status: cancelled ? "cancelled" : "error",
    httpStatus: gw?.status ?? 500,
    account: null,
    errorCode: gw?.code ?? "server_error",
    errorMessage: ctx.family === "compact" && !gw ? String(e) : e instanceof Error ? e.message : String(e),
    // A compaction refused before its stream opened fires no `request.completed`.
    fire: ctx.family !== "compact",
  });
}

/** Fires `request.completed` (in the background: nothing waits for its handlers). */
export function completed(
  proxy: ProxyContext,
  requestId: string,
  account: AccountSnapshot | null,
  ok: boolean,
  httpStatus: number,
): void {
  const { deps } = proxy;
  try {
    // Usually decided at once (no promise); a promise only when a handler or the applier awaits.
    const out = deps.dispatcher.fire("request.completed", {
      requestId,
      account,
      ok,
      httpStatus,
      now: deps.clock(),
    });
    if (out instanceof Promise) out.catch((e) => completedFailed(deps, requestId, e));
  } catch (e) {
    completedFailed(deps, requestId, e);
  }
}

function completedFailed(deps: AppDeps, requestId: string, e: unknown): void {
  deps.log.warn({ err: String(e), requestId }, "request.completed failed");
}

/** The access line of a finished request: one line with the account, tokens and timings. */
function accessLine(ctx: ProxyRequestContext, f: LogFacts) {
  const account = emailHash(ctx.trace.accountEmail ?? null);
  // Compactions and WebSocket turns: the fields of `accessFields`; the other HTTP routes say their family.
  if (ctx.family === "compact" || ctx.transport === "websocket")
    return accessFields({ ...f, method: ctx.method, attempts: ctx.trace.attempts, account });
  const u = f.state?.usage ?? null;
  return {
    requestId: f.requestId,
    method: ctx.method,
    path: f.endpoint,
    endpoint: ctx.family,
    kind: f.kind,
    model: f.model,
    accountId: f.accountId,
    account,
    apiKeyId: f.apiKeyId,
    status: f.httpStatus,
    outcome: f.status,
    errorCode: f.errorCode ?? f.state?.errorCode ?? null,
    attempts: ctx.trace.attempts,
    ttfbMs: f.ttfbMs ?? null,
    ms: f.latencyMs,
    inputTokens: u?.inputTokens ?? null,
    cachedInputTokens: u?.cachedInputTokens ?? null,
    outputTokens: u?.outputTokens ?? null,
    reasoningTokens: u?.reasoningTokens ?? null,
  };
}

/**
 * A compaction's time budget (`CODEX_LB_COMPACT_BUDGET_SECONDS`), on the gateway's timers: when it
 * runs out the upstream call is aborted and the answer is a 504-class timeout.
 */
function startBudget(ctx: ProxyRequestContext): void {
  const { deps } = ctx.proxy;
  const abort = new AbortController();
  const client = ctx.signal;
  const onClientAbort = () => abort.abort();
  client.addEventListener("abort", onClientAbort, { once: true });
  const timer = deps.time.setTimeout(() => {
    ctx.timedOut = true;
    abort.abort();
  }, deps.settings.compactBudgetSeconds * 1000);
  ctx.signal = abort.signal;
  ctx.release = () => {
    deps.time.clearTimeout(timer);
    client.removeEventListener("abort", onClientAbort);
  };
}

export type { ProxySpec, Transport };
