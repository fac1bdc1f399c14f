/**
 * One client's Responses WebSocket (`/backend-api/codex/responses`, `/v1/responses`): each text
 * message `{"type":"response.create", …}` is one turn, checked like an HTTP body, admitted, routed
 * and streamed back as text frames (one event per frame) as the upstream sends them. Turns run one
 * after the other; the socket serves any number of them.
 *
 * - Account: the first turn is routed like an HTTP request (sticky keys, balancing, leases); the
 *   socket then stays on that account while it is usable, and moves (before a turn's first event,
 *   like HTTP failover) when it is not.
 * - Upstream: one upstream WebSocket per client socket (same account), or HTTP SSE when
 *   `CODEX_LB_UPSTREAM_TRANSPORT` says so or the upstream refused the upgrade (`auto`).
 * - `previous_response_id`: the backend keeps `store: false` responses only inside the upstream
 *   connection that made them. A continuation of this socket's last response goes as it is to the
 *   upstream socket that made it; anywhere else (HTTP, another account) the gateway resends the
 *   whole conversation it saw on this socket instead. An id this socket never produced cannot be
 *   continued: the turn fails with a retryable `stream_incomplete`, never a silent wrong answer.
 * - Errors before a turn's first event are `{"type":"error","status":…,"error":{…}}` frames (the
 *   shape the backend itself uses); after it, `response.failed` events, as over HTTP.
 *
 * @module
 */
import type { TimerHandle } from "../../core/clock.ts";
import { GatewayError } from "../../core/errors.ts";
import type { RequestInfo } from "../../core/request-info.ts";
import type { AccountSnapshot } from "../../core/types.ts";
import type { WsPeer, WsSession } from "../../core/websocket.ts";
import type { AccountCredentials } from "../../plugin-host/api.ts";
import { connectWebSocket } from "../../runtime/bun/websocket-client.ts";
import { buildUpstreamHeaders } from "../../upstream/headers.ts";
import { UpstreamSocket } from "../../upstream/websocket.ts";
import { attemptOnce, firstEvent, type Outcome, openUpstream, type UpstreamCall } from "../attempt.ts";
import type { ProxyContext } from "../context.ts";
import { httpFailure, transportFailure } from "../failure.ts";
import { requestKindOf } from "../log-row.ts";
import { endpointKind } from "../observe.ts";
import { reasoningEffortOf, routingFields, toUpstreamPayload } from "../payload.ts";
import { authorize, ProxyRequestContext, settle } from "../pipeline.ts";
import { type FinishStatus, failedEvent, ProxyStream, type StreamState } from "../stream.ts";
import {
  badField,
  checkResponsesTools,
  checkTextFormat,
  isObject,
  type Json,
  validateResponsesBody,
} from "../validate.ts";
import { FRAME_SEPARATOR, syntheticTurn, WsShaper } from "./shaper.ts";
import { rememberTransport, transportFor, upgradeRefused, websocketUrl } from "./transport.ts";

/** The backend's answer to a turn on a connection past its lifetime (60 minutes). */
const CONNECTION_LIMIT = "websocket_connection_limit_reached";

/** The beta token the upstream Responses WebSocket requires (the Codex CLI sends it too). */
export const RESPONSES_WS_BETA = "responses_websockets=2026-02-06";

export interface SocketOptions {
  /** `codex`: every event passed on; `responses`: `codex.*` events hidden (like the HTTP /v1 stream). */
  readonly kind: "codex" | "responses";
  /** The path, for the log rows. */
  readonly endpoint: string;
  readonly turnState: string;
}

/** What the socket remembers of its last completed turn, to continue it anywhere. */
interface LastTurn {
  readonly responseId: string;
  /**
   * The whole input of that turn (earlier turns included), and its output items; null once the
   * conversation outgrew `CODEX_LB_WEBSOCKET_MAX_HISTORY_BYTES` (then only the upstream connection
   * that made the response can continue it).
   */
  readonly input: readonly unknown[] | null;
  readonly output: readonly unknown[] | null;
  /** The conversation's size as JSON text (client messages and output items), in characters. */
  readonly size: number;
}

export class ResponsesSocket implements WsSession {
  readonly #ctx: ProxyContext;
  readonly #headers: Headers;
  readonly #apiKeyId: string | null;
  readonly #clientIp: string | null;
  readonly #opts: SocketOptions;
  #peer: WsPeer | null = null;
  readonly #queue: string[] = [];
  #busy = false;
  #closed = false;
  #idle: TimerHandle | null = null;
  #abort: AbortController | null = null;
  #stream: ProxyStream | null = null;
  #pinned: string | null = null;
  #upstream: UpstreamSocket | null = null;
  #last: LastTurn | null = null;

  /** `info`: the upgrade request's facts after admission (its API key, the client address). */
  constructor(ctx: ProxyContext, headers: Headers, info: RequestInfo, opts: SocketOptions) {
    this.#ctx = ctx;
    this.#headers = headers;
    this.#apiKeyId = info.apiKeyId ?? null;
    this.#clientIp = info.clientIp ?? info.peerIp;
    this.#opts = opts;
  }

  /** The account the socket is on (after its first turn). */
  get pinnedAccountId(): string | null {
    return this.#pinned;
  }

  open(peer: WsPeer): void {
    this.#peer = peer;
    this.#armIdle();
  }

  message(data: string | Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push(typeof data === "string" ? data : new TextDecoder().decode(data));
    void this.#pump();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#peer = null;
    this.#queue.length = 0;
    if (this.#idle) this.#ctx.deps.time.clearTimeout(this.#idle);
    this.#abort?.abort();
    this.#stream?.abort();
    this.#upstream?.close(1000, "client went away");
    this.#upstream = null;
  }

  #armIdle(): void {
    const time = this.#ctx.deps.time;
    if (this.#idle) time.clearTimeout(this.#idle);
    if (this.#closed) return;
    const ms = this.#ctx.deps.settings.websocketIdleTimeoutSeconds * 1000;
    this.#idle = time.setTimeout(() => {
      if (this.#busy || this.#queue.length > 0) return;
      this.#peer?.close(1000, "idle timeout");
      this.close();
    }, ms);
  }

  #send(json: Json | string): void {
    if (!this.#peer) return;
    this.#peer.send(typeof json === "string" ? json : JSON.stringify(json));
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    if (this.#idle) this.#ctx.deps.time.clearTimeout(this.#idle);
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const text = this.#queue.shift()!;
        try {
          await this.#turn(text);
        } catch (e) {
          this.#ctx.deps.log.error(
            { err: e instanceof Error ? e.message : String(e) },
            "websocket turn failed unexpectedly",
          );
          this.#sendError(new GatewayError("server_error"));
        }
      }
    } finally {
      this.#busy = false;
      this.#armIdle();
    }
  }

  /** An error before a turn's first event, in the backend's own WebSocket error shape. */
  #sendError(e: GatewayError): void {
    const error: Json = { type: e.type, code: e.code, message: e.message };
    for (const [k, v] of Object.entries(e.extra)) if (v !== undefined) error[k] = v;
    this.#send({ type: "error", status: e.status, error, headers: { ...e.headers } });
  }

  async #turn(text: string): Promise<void> {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.#sendError(new GatewayError("invalid_json", "Message is not valid JSON"));
      return;
    }
    if (!isObject(msg)) {
      this.#sendError(new GatewayError("invalid_request_error", "Message must be a JSON object"));
      return;
    }
    // An acknowledgement the upstream may want; it gets no answer.
    if (msg.type === "response.processed") {
      this.#upstream?.notify(text);
      return;
    }
    const { type, ...body } = msg;
    try {
      if (type !== "response.create") {
        throw badField("type", "Only 'response.create' messages are accepted");
      }
      validateResponsesBody(body);
      checkResponsesTools(body);
      checkTextFormat(body);
    } catch (e) {
      this.#sendError(e instanceof GatewayError ? e : new GatewayError("invalid_request_error"));
      return;
    }
    await new Turn(this, body, text.length).run();
  }

  // --- what a Turn needs from its socket

  get ctx(): ProxyContext {
    return this.#ctx;
  }
  get headers(): Headers {
    return this.#headers;
  }
  get apiKeyId(): string | null {
    return this.#apiKeyId;
  }
  get clientIp(): string | null {
    return this.#clientIp;
  }
  get options(): SocketOptions {
    return this.#opts;
  }
  get last(): LastTurn | null {
    return this.#last;
  }
  get closed(): boolean {
    return this.#closed;
  }
  sendText(text: string): void {
    this.#send(text);
  }
  sendError(e: GatewayError): void {
    this.#sendError(e);
  }
  begin(abort: AbortController): void {
    this.#abort = abort;
  }
  streaming(ps: ProxyStream | null): void {
    this.#stream = ps;
  }
  finished(account: AccountSnapshot | null, last: LastTurn | null, upstream: UpstreamSocket | null): void {
    this.#abort = null;
    this.#stream = null;
    if (account) this.#pinned = account.id;
    if (last) this.#last = last;
    if (upstream && last) upstream.responseIds.add(last.responseId);
  }
  /** Whether this socket's upstream connection is open and made response `id`. */
  upstreamHolds(id: string): boolean {
    return this.#upstream?.isOpen === true && this.#upstream.responseIds.has(id);
  }
  /** The upstream socket for `accountId`, if one is open (another account's is closed). */
  upstreamFor(accountId: string): UpstreamSocket | null {
    const u = this.#upstream;
    if (u && (u.accountId !== accountId || !u.isOpen)) {
      u.close(1000, "account changed");
      this.#upstream = null;
      return null;
    }
    return u;
  }
  adoptUpstream(u: UpstreamSocket): void {
    if (this.#closed) {
      u.close(1000, "client went away");
      return;
    }
    this.#upstream?.close(1000, "replaced");
    this.#upstream = u;
  }
  get pinned(): string | null {
    return this.#pinned;
  }
}

/**
 * One `response.create` on a socket, from admission to its log row: a proxied request like an HTTP
 * one, with its own {@link ProxyRequestContext} (method `WS`, the upgrade's headers and key), the
 * pipeline's `authorize` and `settle`, and the same attempt loop with this socket's own attempt.
 */
class Turn {
  readonly #s: ResponsesSocket;
  readonly #body: Json;
  readonly #ctx: ProxyRequestContext;
  readonly #abort = new AbortController();
  #usedUpstream: UpstreamSocket | null = null;

  /** The client's message size (characters), counted towards the socket's history cap. */
  readonly #size: number;

  constructor(socket: ResponsesSocket, body: Json, size: number) {
    this.#s = socket;
    this.#body = body;
    this.#size = size;
    const { endpoint } = socket.options;
    const ctx = new ProxyRequestContext(
      socket.ctx,
      "WS",
      socket.headers,
      endpoint,
      endpointKind(endpoint),
      "websocket",
      this.#abort.signal,
      null,
      crypto.randomUUID(),
    );
    ctx.clientIp = socket.clientIp;
    ctx.apiKeyId = socket.apiKeyId;
    ctx.requestedAt = socket.ctx.deps.clock();
    ctx.spec = {
      kind: socket.options.kind,
      model: body.model as string,
      payload: body,
      stream: true,
      reasoningEffort: reasoningEffortOf(body),
      routing: routingFields(body),
      requestKind: requestKindOf(body),
    };
    this.#ctx = ctx;
  }

  get #model(): string {
    return this.#body.model as string;
  }

  /**
   * The turn failed before its first event: a log row, and an error frame (or `response.failed`)
   * once its settle has committed (the frame ends the turn, see {@link run}).
   */
  async #refuse(e: GatewayError, asFailedEvent = false): Promise<void> {
    const s = this.#s;
    const status = s.closed ? "cancelled" : "error";
    await settle(this.#ctx, {
      status,
      httpStatus: e.status,
      account: null,
      errorCode: e.code,
      errorMessage: e.message,
    });
    if (asFailedEvent) {
      s.sendText(
        JSON.stringify(
          failedEvent({ code: e.code, message: e.message, type: e.type }, null, s.ctx.deps.clock()),
        ),
      );
    } else s.sendError(e);
  }

  async run(): Promise<void> {
    const s = this.#s;
    const { deps } = s.ctx;
    const payload = toUpstreamPayload(this.#body);
    const routing = routingFields(payload);
    const input = Array.isArray(payload.input) ? payload.input : [];
    const prevId = routing.previousResponseId;
    const last = s.last;
    if (prevId !== null && last?.responseId !== prevId) {
      // Not made on this socket: no upstream connection of ours can know it.
      await this.#refuse(
        new GatewayError(
          "stream_incomplete",
          "Upstream websocket closed before response.completed: previous_response_id is not known on this connection (responses are not stored); send the full input on a new connection",
        ),
        true,
      );
      return;
    }
    // The whole conversation so far, for any upstream connection that did not see the earlier turns.
    const continuing = prevId !== null && last !== null;
    const history =
      !continuing || last === null
        ? input
        : last.input !== null && last.output !== null
          ? [...last.input, ...last.output, ...input]
          : null;
    if (history === null && !s.upstreamHolds(prevId!)) {
      // Past the history cap, and the upstream connection that made the response is gone.
      await this.#refuse(
        new GatewayError(
          "stream_incomplete",
          "Upstream websocket closed before response.completed: this connection's conversation is larger than the gateway keeps (CODEX_LB_WEBSOCKET_MAX_HISTORY_BYTES); send the full input on a new connection",
        ),
        true,
      );
      return;
    }
    // Past the cap, the turn can only continue where the response lives: it goes as sent.
    const expanded: Json = history === null ? payload : { ...payload, input: history };
    if (history !== null) delete expanded.previous_response_id;
    const size = (continuing && last ? last.size : 0) + this.#size;

    const ctx = this.#ctx;
    // The upstream gets the expanded conversation; the key's reservation counts it, with the turn's
    // own payload as the client's body.
    ctx.spec = { ...ctx.spec!, payload: expanded, clientBody: payload };
    s.begin(this.#abort);
    try {
      await authorize(ctx);
    } catch (e) {
      s.finished(null, null, null);
      await this.#refuse(e instanceof GatewayError ? e : new GatewayError("server_error"));
      return;
    }

    const call: UpstreamCall = {
      requestId: ctx.requestId,
      model: this.#model,
      payload: expanded,
      clientHeaders: s.headers,
      signal: ctx.signal,
      promptCacheKey: routing.promptCacheKey,
      previousResponseId: null,
      preferAccountId: s.pinned,
    };
    let open: Awaited<ReturnType<typeof openUpstream>>;
    try {
      open = await openUpstream(s.ctx, call, ctx.trace, (account, creds) =>
        this.#attempt(call, account, creds, payload, expanded),
      );
    } catch (e) {
      s.finished(null, null, null);
      const err = e instanceof GatewayError ? e : new GatewayError("server_error");
      if (err.code === "previous_response_not_found") {
        await this.#refuse(
          new GatewayError(
            "stream_incomplete",
            "Upstream websocket closed before response.completed; send the full input on a new connection",
          ),
          true,
        );
      } else await this.#refuse(err);
      return;
    }
    const ttfbMs = Math.round(performance.now() - ctx.startedAt);
    const shaper = new WsShaper(s.options.kind === "responses");
    let outcome: { state: StreamState; status: FinishStatus } | null = null;
    const ps = new ProxyStream(s.ctx, open, shaper, (state, status) => {
      outcome = { state, status };
    });
    s.streaming(ps);
    // Frames go out as they come until the turn's terminal event: from there on they are held
    // until the turn's settle has committed (below), so the client never sees its turn end first.
    let held = "";
    for (;;) {
      const text = await ps.step();
      if (text === null) break;
      if (ps.state.terminal !== null) held += text;
      else if (text !== "") this.#sendFrames(text);
    }
    const done = (outcome ?? { state: ps.state, status: "cancelled" }) as {
      state: StreamState;
      status: FinishStatus;
    };
    const ok = done.status === "success" && done.state.responseId !== null;
    let lastTurn: LastTurn | null = null;
    if (ok) {
      const total = size + shaper.outputSize();
      const keep = history !== null && total <= deps.settings.websocketMaxHistoryBytes;
      if (history !== null && !keep) {
        deps.log.info(
          { requestId: ctx.requestId, size: total },
          "websocket conversation over the history cap; only its upstream connection can continue it now",
        );
      }
      lastTurn = {
        responseId: done.state.responseId!,
        input: keep ? history : null,
        output: keep ? shaper.items() : null,
        size: total,
      };
    }
    s.finished(open.account, lastTurn, ctx.upstreamTransport === "websocket" ? this.#usedUpstream : null);
    await settle(ctx, {
      status: done.status,
      httpStatus: 200,
      state: done.state,
      ttfbMs,
      account: open.account,
    });
    this.#sendFrames(held);
  }

  /** Sends the frames of `text` (the shaper's frames, joined by {@link FRAME_SEPARATOR}). */
  #sendFrames(text: string): void {
    for (const frame of text.split(FRAME_SEPARATOR)) if (frame !== "") this.#s.sendText(frame);
  }

  /** One attempt on `account`: over this socket's upstream WebSocket, or over HTTP SSE. */
  async #attempt(
    call: UpstreamCall,
    account: AccountSnapshot,
    creds: AccountCredentials,
    payload: Json,
    expanded: Json,
  ): Promise<Outcome> {
    const s = this.#s;
    const { ctx } = s;
    const setting = ctx.deps.settings.upstreamTransport as "auto" | "websocket" | "http";
    if (transportFor(setting, ctx.upstreamUrl) === "http") return this.#http(call, account, creds, expanded);

    let upstream = s.upstreamFor(account.id);
    if (!upstream) {
      const c = await this.#connect(call, account, creds, expanded, setting);
      if (!(c instanceof UpstreamSocket)) return c;
      upstream = c;
    }
    this.#ctx.upstreamTransport = "websocket";
    this.#usedUpstream = upstream;
    // The upstream connection that made the previous response gets only the new input.
    const prevId = typeof payload.previous_response_id === "string" ? payload.previous_response_id : null;
    const continues = prevId !== null && upstream.responseIds.has(prevId);
    let outcome = await this.#send(upstream, continues ? payload : expanded);
    if (outcome.kind === "failed" && outcome.failure.errorCode === CONNECTION_LIMIT) {
      // The backend ends a connection after its lifetime (60 minutes) and answers the next turn
      // with this error. The client's socket stays: the turn goes, as the whole conversation, to a
      // new upstream connection on the same account (once), and the client never sees it.
      upstream.close(1000, "connection limit reached");
      ctx.deps.log.info(
        { requestId: call.requestId },
        "upstream websocket connection limit reached; reconnecting",
      );
      const c = await this.#connect(call, account, creds, expanded, setting);
      if (!(c instanceof UpstreamSocket)) return c;
      this.#usedUpstream = c;
      outcome = await this.#send(c, expanded);
    }
    // A refused token: the retry (after a refresh) must open a new connection with the new one.
    if (outcome.kind === "failed" && outcome.failure.httpStatus === 401) {
      this.#usedUpstream?.close(1000, "auth failed");
    }
    return outcome;
  }

  /** Sends one turn on `upstream` and waits for its first event. */
  #send(upstream: UpstreamSocket, body: Json): Promise<Outcome> {
    const { stream: _stream, background: _background, ...rest } = body;
    const events = upstream.send(JSON.stringify({ type: "response.create", ...rest }));
    return firstEvent(events, new Headers(), new AbortController());
  }

  /**
   * Opens this socket's upstream WebSocket on `account` (and adopts it), or says why not: a failed
   * attempt, or — for an upstream refusing the upgrade under `auto` — the attempt made over HTTP.
   */
  async #connect(
    call: UpstreamCall,
    account: AccountSnapshot,
    creds: AccountCredentials,
    expanded: Json,
    setting: "auto" | "websocket" | "http",
  ): Promise<UpstreamSocket | Outcome> {
    const s = this.#s;
    const { ctx } = s;
    const url = websocketUrl(ctx.upstreamUrl);
    const r = await connectWebSocket(
      url,
      upstreamWsHeaders(s.headers, creds, call.requestId),
      ctx.deps.settings.upstreamConnectTimeoutSeconds * 1000,
      call.signal,
      ctx.deps.time,
    );
    if (!r.ok) {
      if (r.status !== null && setting === "auto" && upgradeRefused(r.status)) {
        rememberTransport(ctx.upstreamUrl, "http");
        ctx.deps.log.info(
          { upstream: ctx.upstreamUrl, status: r.status },
          "upstream refused the WebSocket upgrade; using HTTP for it from now on",
        );
        return this.#http(call, account, creds, expanded);
      }
      this.#ctx.upstreamTransport = "websocket";
      if (r.status !== null) return { kind: "failed", failure: httpFailure(r.status, r.message) };
      return {
        kind: "failed",
        failure: transportFailure({
          httpStatus: null,
          errorCode: r.timeout ? "timeout" : "transport_error",
          errorType: null,
          message: r.message,
          transport: true,
        }),
      };
    }
    rememberTransport(ctx.upstreamUrl, "websocket");
    const upstream = new UpstreamSocket(
      r.socket,
      account.id,
      ctx.deps.settings.streamIdleTimeoutSeconds * 1000,
      ctx.deps.time,
    );
    s.adoptUpstream(upstream);
    return upstream;
  }

  #http(
    call: UpstreamCall,
    account: AccountSnapshot,
    creds: AccountCredentials,
    expanded: Json,
  ): Promise<Outcome> {
    this.#ctx.upstreamTransport = "http";
    // A warm-up turn (`generate: false`) only primes an upstream connection: over HTTP there is
    // none to prime, so it is answered here (its id still anchors the next turn's continuation).
    if (expanded.generate === false)
      return Promise.resolve(syntheticTurn(this.#model, this.#s.ctx.deps.clock()));
    return attemptOnce(this.#s.ctx, call, account, creds, JSON.stringify(expanded));
  }
}

/** Upstream handshake headers: the HTTP ones, without body headers, with the WebSocket beta token. */
function upstreamWsHeaders(client: Headers, creds: AccountCredentials, requestId: string): Headers {
  const h = buildUpstreamHeaders(client, creds, { requestId });
  h.delete("content-type");
  h.delete("accept");
  const beta = (h.get("openai-beta") ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "" && t !== "responses=experimental" && !t.startsWith("responses_websockets="));
  h.set("openai-beta", [...beta, RESPONSES_WS_BETA].join(","));
  return h;
}
