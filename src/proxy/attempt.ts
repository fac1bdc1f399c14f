/**
 * The attempt loop: select an account, hold a lease on it, get its credentials, call the upstream
 * and look at the answer until its first real event. Any failure before that point fires
 * `upstream.failed`; when a handler returned `request.failover`, the request moves to the
 * next account (at most {@link MAX_ACCOUNTS_PER_REQUEST}, plus one same-account retry after a
 * forced token refresh on a 401). What reaches the caller is an open stream whose first bytes
 * have not been sent yet, or the GatewayError to answer with.
 *
 * @module
 */
import { GatewayError } from "../core/errors.ts";
import { isProbing } from "../core/health.ts";
import type { AccountSnapshot } from "../core/types.ts";
import type { AccountCredentials, Lease } from "../plugin-host/api.ts";
import { sendUpstream, type UpstreamBody } from "../upstream/client.ts";
import { type EventBytes, StreamIdleTimeout, UpstreamEvents } from "../upstream/event-stream.ts";
import { buildUpstreamHeaders } from "../upstream/headers.ts";
import { eventJson, type SseEvent } from "../upstream/sse.ts";
import { MAX_ACCOUNTS_PER_REQUEST, type ProxyContext } from "./context.ts";
import { type AttemptFailure, failureError, httpFailure, sseFailure, transportFailure } from "./failure.ts";
import { quotaFromHeaders } from "./live-quota.ts";
import { isUsable, noAccountError, type RoutingDecision, selectAccount } from "./select.ts";
import type { Json } from "./validate.ts";

export interface UpstreamCall {
  readonly requestId: string;
  readonly model: string | null;
  readonly payload: Json;
  /** `payload` serialised, when the caller has it (else it is serialised here). */
  readonly payloadText?: string;
  /** `payloadText` as handed to `fetch`, when the caller has it (see `upstreamBody` in payload.ts). */
  readonly payloadBody?: UpstreamBody | undefined;
  readonly clientHeaders: Headers;
  /** The client's signal: aborting it aborts the upstream call. */
  readonly signal: AbortSignal;
  readonly promptCacheKey: string | null;
  readonly previousResponseId: string | null;
  /** Accounts to try at most (default {@link MAX_ACCOUNTS_PER_REQUEST}). */
  readonly maxAccounts?: number;
  /**
   * An account to use first while it is usable (a WebSocket client's pinned account); the
   * balancing hook is asked only when it is not.
   */
  readonly preferAccountId?: string | null;
}

/** What reads an upstream answer's events: the SSE body of an HTTP call, or one WebSocket turn. */
export interface UpstreamEventSource {
  /** The events that arrived next (possibly none), or null once the answer is over. */
  next(): Promise<SseEvent[] | null>;
  /** Stops reading (client gone, stream done). */
  cancel(reason?: unknown): void;
  /** Whole events as the upstream's bytes (an HTTP SSE body, see UpstreamEvents.nextBytes). */
  nextBytes?(): Promise<EventBytes | SseEvent[] | null>;
  /** What nextBytes would give when it is at hand without waiting, else undefined (see UpstreamEvents.nextBytesNow). */
  nextBytesNow?(): EventBytes | SseEvent[] | null | undefined;
  /** Puts the events read so far back as bytes, when it can (see UpstreamEvents.replay). */
  replay?(): boolean;
}

/** One attempt on one account: an open stream, or the failure to classify. */
export type AttemptFn = (account: AccountSnapshot, creds: AccountCredentials) => Promise<Outcome>;

/** An upstream stream that passed the first-event check; nothing of it has reached the client yet. */
export interface OpenStream {
  readonly account: AccountSnapshot;
  readonly events: UpstreamEventSource;
  /** Events already read (up to and including the first real one), to be sent first. */
  readonly prelude: readonly SseEvent[];
  readonly headers: Headers;
  readonly controller: AbortController;
  readonly lease: Lease;
}

/** What the loop learned, for the request log, whatever the outcome. */
export interface AttemptTrace {
  accountId: string | null;
  /** The account's email (the access log shows a hash of it, never the address). */
  accountEmail?: string | null;
  attempts: number;
  /** Milliseconds spent waiting for a stream slot, over all attempts (the request log's queue time). */
  queueMs?: number;
}

/** Event types that may come before the one that decides whether the stream is usable. */
const PRELUDE_TYPES = new Set(["response.created", "response.in_progress"]);

/** The event type of an SSE event (its `event:` name, else the JSON `type`). */
export function typeOf(ev: SseEvent): string {
  if (ev.event) return ev.event;
  const j = eventJson(ev);
  return typeof j?.type === "string" ? j.type : "";
}

export type Outcome =
  | { kind: "open"; open: Omit<OpenStream, "lease" | "account"> }
  | { kind: "failed"; failure: AttemptFailure };

/** One HTTP SSE attempt (`POST {upstream}/codex/responses`) of `body` on `account`. */
export async function attemptOnce(
  ctx: ProxyContext,
  call: UpstreamCall,
  account: AccountSnapshot,
  creds: AccountCredentials,
  body: UpstreamBody,
): Promise<Outcome> {
  const { settings } = ctx.deps;
  const res = await sendUpstream(`${ctx.upstreamUrl}/codex/responses`, {
    method: "POST",
    headers: buildUpstreamHeaders(call.clientHeaders, creds, { requestId: call.requestId }),
    body,
    signal: call.signal,
    connectTimeoutMs: settings.upstreamConnectTimeoutSeconds * 1000,
    timers: ctx.deps.time,
    client: settings.upstreamClient,
  });
  if (!res.ok) return { kind: "failed", failure: transportFailure(res.failure) };
  const { response, controller } = res;
  const quota = quotaFromHeaders(response.headers);
  if (quota) ctx.quota.record(account.id, quota, ctx.deps.clock());
  if (response.status < 200 || response.status >= 300 || !response.body) {
    const text = await response.text().catch(() => "");
    controller.abort();
    return { kind: "failed", failure: httpFailure(response.status, text) };
  }
  const events = new UpstreamEvents(response.body, settings.streamIdleTimeoutSeconds * 1000, ctx.deps.time);
  return firstEvent(events, response.headers, controller);
}

/**
 * Reads an upstream answer until its first real event (past `codex.*`, `response.created`,
 * `response.in_progress`): an error there is a failure to classify (a WebSocket `error` frame
 * carrying an HTTP `status` is classified like that HTTP answer), anything else opens the stream.
 */
export async function firstEvent(
  events: UpstreamEventSource,
  headers: Headers,
  controller: AbortController,
): Promise<Outcome> {
  const prelude: SseEvent[] = [];
  try {
    for (;;) {
      const batch = await events.next();
      if (batch === null) {
        events.cancel();
        controller.abort();
        return {
          kind: "failed",
          failure: sseFailure({
            type: "error",
            error: { code: "stream_incomplete", message: "Upstream closed the stream before any event" },
          }),
        };
      }
      for (let i = 0; i < batch.length; i++) {
        const ev = batch[i]!;
        prelude.push(ev);
        const type = typeOf(ev);
        if (type.startsWith("codex.") || PRELUDE_TYPES.has(type)) continue;
        if (type === "error" || type === "response.failed") {
          events.cancel();
          controller.abort();
          const json = eventJson(ev);
          const status = json?.status ?? json?.status_code;
          if (typeof status === "number" && status >= 400 && status <= 599) {
            return { kind: "failed", failure: httpFailure(status, ev.data) };
          }
          return { kind: "failed", failure: sseFailure(json ?? { type }) };
        }
        if (type === "") {
          // Neither an event name nor a JSON `type`: whatever this is, it is not a Codex answer
          // (garbage from a broken proxy or backend). A failure of this attempt, never passed on.
          events.cancel();
          controller.abort();
          return {
            kind: "failed",
            failure: transportFailure({
              httpStatus: null,
              errorCode: "bad_upstream_stream",
              errorType: null,
              message: "the upstream answered with an event stream that is not Codex events",
              transport: true,
            }),
          };
        }
        // The rest of this chunk goes out with the prelude.
        prelude.push(...batch.slice(i + 1));
        return { kind: "open", open: { events, prelude, headers, controller } };
      }
    }
  } catch (e) {
    events.cancel();
    controller.abort();
    const timeout = e instanceof StreamIdleTimeout;
    return {
      kind: "failed",
      failure: transportFailure({
        httpStatus: null,
        errorCode: timeout ? "timeout" : "transport_error",
        errorType: null,
        message: e instanceof Error ? e.message : String(e),
        transport: true,
      }),
    };
  }
}

/**
 * Opens an upstream stream for `call`, failing over between accounts before the first byte.
 * Throws the GatewayError to answer with when no account could serve it.
 */
export async function openUpstream(
  ctx: ProxyContext,
  call: UpstreamCall,
  trace: AttemptTrace,
  attempt?: AttemptFn,
): Promise<OpenStream> {
  const { services } = ctx.deps;
  const tried: string[] = [];
  let last: GatewayError | null = null;
  const body = call.payloadBody ?? call.payloadText ?? JSON.stringify(call.payload);
  const log = ctx.deps.log;
  const metrics = ctx.deps.metrics;
  const routingLog = log.isLevelEnabled("debug")
    ? (d: RoutingDecision) => log.debug(d, "routing decision")
    : undefined;
  const maxAccounts = call.maxAccounts ?? MAX_ACCOUNTS_PER_REQUEST;
  const time = ctx.deps.time;
  // Slot waits of this request so far, on the gateway's clock: the queue wait is one budget per
  // request, not one per account tried.
  let waitedMs = 0;
  while (tried.length < maxAccounts) {
    if (call.signal.aborted) throw new GatewayError("server_error", "Client went away");
    const preferred =
      call.preferAccountId && !tried.includes(call.preferAccountId)
        ? await preferredAccount(ctx, call.preferAccountId)
        : null;
    const selected =
      preferred ??
      selectAccount(
        ctx.deps,
        {
          requestId: call.requestId,
          model: call.model,
          headers: call.clientHeaders,
          excluded: tried,
          promptCacheKey: call.promptCacheKey,
          previousResponseId: call.previousResponseId,
        },
        last,
        routingLog,
      );
    // Awaited only when it is a promise: the usual selection comes at once (see selectAccount).
    const account = selected instanceof Promise ? await selected : selected;
    tried.push(account.id);
    trace.accountId = account.id;
    trace.accountEmail = account.email;
    let lease: Lease;
    const waitStart = performance.now();
    const waitFrom = time.now();
    // Back from a backoff and not proven since: one request at a time goes to it (a probe).
    const probe = isProbing(account, waitFrom);
    try {
      lease = await services
        .provider("leases")
        .acquire(account.id, { requestId: call.requestId, signal: call.signal, waitedMs, probe });
      metrics?.queueWait.observe(["acquired"], (performance.now() - waitStart) / 1000);
      trace.queueMs = (trace.queueMs ?? 0) + (performance.now() - waitStart);
      waitedMs += time.now() - waitFrom;
    } catch (e) {
      if (!(e instanceof GatewayError)) throw e;
      metrics?.queueWait.observe(["refused"], (performance.now() - waitStart) / 1000);
      trace.queueMs = (trace.queueMs ?? 0) + (performance.now() - waitStart);
      waitedMs += time.now() - waitFrom;
      metrics?.failovers.inc(["lease"]);
      last = e;
      continue;
    }
    if (probe) {
      // This request waited behind the probe: if the probe failed, the account is backing off again.
      const now = (await ctx.deps.services.accounts.list()).find((s) => s.id === account.id);
      if (!now || !isUsable(now, services.now())) {
        lease.release();
        continue;
      }
    }
    let handedOver = false;
    try {
      let forced = false;
      for (;;) {
        let creds: AccountCredentials;
        try {
          creds = await services
            .provider("credentials")
            .get(account.id, { forceRefresh: forced, requestId: call.requestId });
        } catch (e) {
          // The reason names the account (its internal id, its status): it goes to the log, never
          // to the API client.
          ctx.deps.log.warn(
            {
              requestId: call.requestId,
              accountId: account.id,
              err: e instanceof Error ? e.message : String(e),
            },
            "account credentials unavailable",
          );
          last = new GatewayError("upstream_unavailable", "Account credentials unavailable");
          break;
        }
        trace.attempts++;
        const outcome = attempt
          ? await attempt(account, creds)
          : await attemptOnce(ctx, call, account, creds, body);
        if (outcome.kind === "open") {
          handedOver = true;
          return { ...outcome.open, account, lease };
        }
        const f = outcome.failure;
        if (call.signal.aborted) throw new GatewayError("server_error", "Client went away");
        // A 401 may only mean the access token just expired: refresh it once and retry here.
        if (f.httpStatus === 401 && !forced) {
          forced = true;
          continue;
        }
        const fired = await services.fire(
          "upstream.failed",
          {
            ...f,
            requestId: call.requestId,
            account,
            phase: f.phase,
            resetsAt: f.resetsAt,
            resetsInSeconds: f.resetsInSeconds,
            now: services.now(),
          },
          { requestId: call.requestId },
        );
        last = failureError(f);
        // Failover is a decision (`request.failover`), never a side effect of an account action.
        // Without one (a bad request: any account would answer the same) the client gets the error.
        if (!fired.actions.some((a) => a.type === "request.failover")) throw last;
        metrics?.failovers.inc([f.phase]);
        break;
      }
    } finally {
      if (!handedOver) lease.release();
    }
  }
  const all = await ctx.deps.services.accounts.list();
  throw noAccountError(all, services.now(), last);
}

/** The account `id` when it is usable now, else null (the caller selects another). */
async function preferredAccount(ctx: ProxyContext, id: string): Promise<AccountSnapshot | null> {
  const all = await ctx.deps.services.accounts.list();
  const a = all.find((s) => s.id === id);
  return a && isUsable(a, ctx.deps.services.now()) ? a : null;
}
