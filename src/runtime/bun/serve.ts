/**
 * The Bun seam for HTTP and WebSocket: puts a `serve(Request, peerIp) → Response | WsAccept` on a
 * socket with Bun's server and stops it gracefully. A request the app accepted as a WebSocket upgrade
 * (it answered a {@link WsAccept}, see `src/core/websocket.ts`) is upgraded here, after the app
 * (admission, API key, route) has run, and its session is fed the socket's messages. Nothing else in
 * the code base starts a server.
 *
 * Connections that have not finished their first request's headers are guarded here (see
 * {@link listen}): Bun.serve has no hook before a request's headers are in, but Bun's node:http runs
 * on a Bun.serve server whose native accept hook it sets, so the server is started through
 * node:http and its Bun.serve server is then given our `fetch` and `websocket` handlers
 * (`server.reload`): requests take Bun.serve's path, only each new connection passes the hook.
 *
 * @module
 */
import { createServer } from "node:http";
import type { Socket } from "node:net";
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { WsAccept, WsPeer, WsSession } from "../../core/websocket.ts";
import { type GcPacer, releaseGcPacer, setActiveGcPacer } from "./gc-pacer.ts";

/**
 * Bytes a Responses WebSocket may have waiting for a client that does not read them (Bun's
 * `backpressureLimit`); past it the socket is closed (1006 on both sides: a close frame could not
 * reach a client that does not read), never kept open with frames dropped.
 */
export const WS_BACKPRESSURE_LIMIT_BYTES = 4 * 1024 * 1024;

export interface Listening {
  readonly host: string;
  readonly port: number;
  /**
   * False when this Bun's node:http no longer exposes its Bun.serve server: the server runs on plain
   * Bun.serve, without the header deadline and the per-address cap (the caller logs a warning).
   */
  readonly guarded: boolean;
  /** Stops accepting; waits up to `graceMs` for in-flight requests, then closes what is left. */
  close(graceMs: number): Promise<void>;
}

/**
 * Where Bun 1.4's node:http keeps the Bun.serve server it listens with (`serverSymbol` in Bun's
 * src/js/node/_http_server.ts). Not a public API: a Bun without it is detected at start.
 */
const BUN_SERVER = Symbol.for("::bunternal::");

interface Handlers {
  fetch(request: Request, srv: Server<WsSession>): Promise<Response | undefined>;
  websocket: WebSocketHandler<WsSession>;
  error(e: Error): Response;
}

type Handler = (
  request: Request,
  peerIp: string | null,
) => Promise<Response | WsAccept> | Response | WsAccept;

export function listen(
  handler: Handler,
  opts: {
    host: string;
    port: number;
    /**
     * Bun.serve's body limit, applied only on the plain Bun.serve fallback (`guarded` false): the
     * server node:http starts sets no body limit, and the app's body guard
     * (`CODEX_LB_MAX_BODY_BYTES`) applies on both paths.
     */
    maxRequestBodySize: number;
    maxWebSocketMessageBytes?: number;
    /**
     * Seconds a kept-alive connection may wait for its next request or spend sending that request's
     * headers (Bun's socket timeout, set with `server.timeout` after each answer; 0: never). While the
     * app handles a request, and while a stream (`text/event-stream`) is sent, the limit is off: the
     * app's own deadlines apply.
     */
    connectionIdleTimeoutSeconds: number;
    /**
     * Seconds a new connection may take, from its opening, to finish its first request's headers;
     * then it is closed without an answer (checked four times per period, so up to a quarter more).
     */
    headersTimeoutSeconds: number;
    /** Connections per client address that may be open without having finished their first headers. */
    maxPendingConnectionsPerAddress: number;
    /**
     * Full garbage collections while many requests are in flight (`CODEX_LB_GC_REQUEST_STEP`,
     * `CODEX_LB_GC_MIN_INTERVAL_MS`; see gc-pacer.ts): each request arriving counts, and the pacer
     * becomes the process's (upstream chunks count too); absent: none asked for.
     */
    gc?: GcPacer;
    onError?: (e: Error) => void;
  },
): Listening {
  const idle = opts.connectionIdleTimeoutSeconds;
  /** Open sockets, each with its peer (whose queued frames a shutdown sends before closing). */
  const sockets = new Map<ServerWebSocket<WsSession>, WsPeer>();
  const pending = new PendingConnections(opts.headersTimeoutSeconds, opts.maxPendingConnectionsPerAddress);
  const gc = opts.gc;
  const handlers: Handlers = {
    async fetch(request, srv) {
      // The request is the app's now: its body deadline, upstream timeouts and stream idle timeout
      // apply, not the connection's idle limit (a non-streamed answer may take minutes to assemble).
      if (idle > 0) srv.timeout(request, 0);
      const peer = srv.requestIP(request);
      // A connection's first request: it has its headers in, it is no longer pending.
      if (peer !== null && pending.size !== 0) pending.settle(peer.address, peer.port);
      gc?.tick();
      const answer = await handler(request, peer?.address ?? null);
      if (!(answer instanceof Response)) {
        const accept = answer;
        if (srv.upgrade(request, { headers: accept.headers, data: accept.session })) return undefined;
        accept.session.close(1006, "upgrade failed");
        return Response.json(
          {
            error: {
              message: "The WebSocket upgrade failed",
              type: "invalid_request_error",
              code: "websocket_upgrade_failed",
            },
          },
          { status: 400 },
        );
      }
      const response = answer;
      // Back to the idle limit for the wait for the next request, except under a stream, which may be
      // quiet for minutes (the proxy's stream idle timeout ends it); its connection keeps no limit.
      if (idle > 0 && !response.headers.get("content-type")?.startsWith("text/event-stream"))
        srv.timeout(request, idle);
      return response;
    },
    websocket: {
      // Sessions keep their own idle timeout (a turn may be quiet for minutes).
      idleTimeout: 0,
      maxPayloadLength: opts.maxWebSocketMessageBytes ?? 16 * 1024 * 1024,
      // Clients' requests may come compressed (the Codex CLI's long histories); events go out
      // uncompressed: they are small, and deflating each one costs more CPU than the proxying.
      perMessageDeflate: { compress: false, decompress: true },
      // A client that reads too slowly: past this many bytes waiting for it, the socket is closed
      // (the session sees 1006 and ends its turn) instead of Bun's default, which keeps the socket
      // open and drops the frames sent past its 16 MB (the client would get a turn with events
      // missing and no error, and each such socket would hold 16 MB).
      backpressureLimit: WS_BACKPRESSURE_LIMIT_BYTES,
      closeOnBackpressureLimit: true,
      open(ws) {
        const peer = batchedPeer(ws);
        sockets.set(ws, peer);
        ws.data.open(peer);
      },
      message(ws, message) {
        ws.data.message(typeof message === "string" ? message : new Uint8Array(message));
      },
      close(ws, code, reason) {
        sockets.delete(ws);
        ws.data.close(code, reason);
      },
    },
    // Last resort for anything the handler let escape: a JSON 500, one log line (by the caller).
    // It must not throw: Bun would answer its development error page (source lines, working
    // directory) instead, since the server node:http starts keeps `development` on.
    error(e) {
      try {
        opts.onError?.(e);
      } catch {
        // The log line is lost; the client still gets the JSON 500.
      }
      return new Response(
        JSON.stringify({ error: { code: "server_error", message: "Internal server error" } }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  };

  const { server, guarded } = start(opts, handlers, pending);
  if (gc) {
    gc.attach(server);
    setActiveGcPacer(gc);
  }
  return {
    host: opts.host,
    port: server.port ?? opts.port,
    guarded,
    async close(graceMs) {
      if (gc) releaseGcPacer(gc);
      // Open WebSockets would hold a graceful stop forever: tell their clients to reconnect elsewhere.
      for (const peer of sockets.values()) peer.close(1001, "server shutting down");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceful = server.stop(false);
      // A server node:http started waits for every connection to end, idle kept-alive ones too:
      // close those now and each one that goes idle after its answer (every 100 ms).
      server.closeIdleConnections();
      const idleCloser = setInterval(() => server.closeIdleConnections(), 100);
      const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), graceMs);
      });
      const how = await Promise.race([graceful.then(() => "done" as const), timeout]);
      clearTimeout(timer);
      clearInterval(idleCloser);
      if (how === "timeout") await server.stop(true);
      // Only now: during the grace period the sweep keeps closing connections that never finish their
      // headers, so none of them can hold the stop for all of graceMs.
      pending.stop();
    },
  };
}

/**
 * Starts the server through node:http (its accept hook feeds `pending`) and hands its Bun.serve
 * server our handlers; on a Bun whose node:http does not expose that server, plain Bun.serve.
 */
function start(
  opts: { host: string; port: number; maxRequestBodySize: number; connectionIdleTimeoutSeconds: number },
  h: Handlers,
  pending: PendingConnections,
): { server: Server<WsSession>; guarded: boolean } {
  // Bun's own request and header timers are off (0); ours and Bun.serve's idle timeout apply.
  const http = createServer({ headersTimeout: 0, requestTimeout: 0 });
  http.on("connection", (socket: Socket) => pending.open(socket));
  // Bun's node:http listens synchronously, reporting a failure later as an 'error' event: a missing
  // server below means the listen failed, and the plain Bun.serve fallback throws its error.
  http.on("error", () => {});
  http.listen(opts.port, opts.host);
  const server = (http as unknown as Record<symbol, Server<WsSession> | undefined>)[BUN_SERVER];
  if (server && typeof server.reload === "function" && typeof server.stop === "function") {
    // `reload` swaps only the handlers: `development` stays as node:http set it (on unless
    // NODE_ENV=production), so Bun's development error page is kept off by `error` never throwing.
    server.reload({ fetch: h.fetch, websocket: h.websocket, error: h.error });
    // node:http starts its server with no idle limit and no body limit; ours are set per request
    // (srv.timeout above) and by the app (its body guard).
    return { server, guarded: true };
  }
  http.close();
  pending.stop();
  // Either this Bun keeps its node:http server elsewhere, or the listen failed: plain Bun.serve
  // (which throws the listen error, e.g. EADDRINUSE, as before).
  const plain = Bun.serve<WsSession>({
    development: false,
    fetch: h.fetch,
    websocket: h.websocket,
    error: h.error,
    hostname: opts.host,
    port: opts.port,
    // Between requests and while the next request's headers arrive.
    idleTimeout: opts.connectionIdleTimeoutSeconds,
    maxRequestBodySize: opts.maxRequestBodySize,
  });
  return { server: plain, guarded: false };
}

interface Entry {
  socket: Socket;
  address: string;
  /** The sweep tick the connection opened in. */
  tick: number;
}

/**
 * Connections that have not finished their first request's headers: at most `max` per client
 * address (more are closed at once), each closed once it has been pending for the deadline. One
 * interval timer, running only while some connection is pending, sweeps four times per deadline
 * (counting ticks: no clock reads); a connection is closed on the fifth sweep after it opened, so
 * between the deadline and 1.25× it after its opening.
 */
class PendingConnections {
  readonly #byPeer = new Map<string, Entry>();
  readonly #perAddress = new Map<string, number>();
  readonly #max: number;
  readonly #periodMs: number;
  #tick = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(deadlineSeconds: number, maxPerAddress: number) {
    this.#max = maxPerAddress;
    this.#periodMs = Math.max(1, Math.round((deadlineSeconds * 1000) / 4));
  }

  get size(): number {
    return this.#byPeer.size;
  }

  /** A connection was accepted (Bun's node:http accept hook). */
  open(socket: Socket): void {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    if (address === undefined || port === undefined) return;
    const key = `${address}:${port}`;
    // A closed connection from the same port whose close has not been seen yet: it is gone.
    this.#remove(key);
    const count = this.#perAddress.get(address) ?? 0;
    if (count >= this.#max) {
      socket.destroy();
      return;
    }
    this.#perAddress.set(address, count + 1);
    this.#byPeer.set(key, { socket, address, tick: this.#tick });
    socket.once("close", () => this.#remove(key, socket));
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), this.#periodMs);
      // Pending connections alone do not keep the process alive.
      this.#timer.unref();
    }
  }

  /** The connection from `address`:`port` has its first request's headers in. */
  settle(address: string, port: number): void {
    const key = `${address}:${port}`;
    const entry = this.#byPeer.get(key);
    if (entry === undefined) return;
    this.#remove(key);
    releaseNodeSocket(entry.socket);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Forgets the connection under `key` (only if it is `socket`, when given). */
  #remove(key: string, socket?: Socket): void {
    const entry = this.#byPeer.get(key);
    if (entry === undefined || (socket !== undefined && entry.socket !== socket)) return;
    this.#byPeer.delete(key);
    const left = (this.#perAddress.get(entry.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(entry.address, left);
    else this.#perAddress.delete(entry.address);
    if (this.#byPeer.size === 0) this.stop();
  }

  #sweep(): void {
    this.#tick++;
    for (const [key, entry] of this.#byPeer) {
      // Map order is opening order: the first one still young ends the sweep.
      if (this.#tick - entry.tick < 5) break;
      this.#remove(key);
      entry.socket.destroy();
    }
  }
}

/** The symbols under which Bun's node:http keeps a connection's native handle and the tracked set. */
let nodeKeys: { handle: symbol | undefined; tracked: symbol | undefined } | undefined;

const symbolNamed = (o: object, description: string) =>
  Object.getOwnPropertySymbols(o).find((k) => k.description === description);

/**
 * Lets go of the node `Socket` Bun's node:http made for a connection, once the guard is done with it
 * (its first request's headers are in). Bun links that Socket (a Duplex: stream states, listeners,
 * about 1.6 KB in 14 objects) from the native connection (`duplex`, `onclose`) and from the node
 * server's set of tracked connections for as long as the connection is open, but nothing reads it
 * after the accept hook: requests take Bun.serve's path, and the server is stopped through Bun.serve.
 * Unlinked, it is collected; the connection itself is untouched. Bun internals, found by the
 * descriptions of their symbols (looked up once): a Bun without either keeps the Socket, as before.
 */
export function releaseNodeSocket(socket: Socket): void {
  const own = socket as unknown as Record<symbol, unknown> & { server?: Record<symbol, unknown> };
  nodeKeys ??= {
    handle: symbolNamed(own, "handle"),
    tracked: own.server ? symbolNamed(own.server, "http.server.trackedConnections") : undefined,
  };
  const handle = nodeKeys.handle && (own[nodeKeys.handle] as Record<string, unknown> | null | undefined);
  if (!handle || handle.duplex !== socket) return;
  const tracked = nodeKeys.tracked && own.server?.[nodeKeys.tracked];
  // Both or neither: the Socket leaves the tracked set in its `onclose`, so unlinking the handle
  // alone would keep it in that set for good (after its connection closed too).
  if (!(tracked instanceof Set)) return;
  tracked.delete(socket);
  handle.onclose = undefined;
  handle.duplex = undefined;
}

/**
 * The sending side of an accepted socket: the frames sent in one event-loop turn go out together,
 * corked, in one write to the socket. A turn's events come from the upstream in a burst that Bun
 * hands over one message per microtask drain, all in one event-loop turn; an uncorked send outside
 * Bun's own callbacks is one system call per frame (a third of the gateway's CPU per WebSocket turn
 * in a profile). Frames keep their order; `close` sends what is queued first.
 */
function batchedPeer(ws: ServerWebSocket<WsSession>): WsPeer {
  let queue: string[] | null = null;
  const flush = () => {
    const frames = queue;
    queue = null;
    if (frames === null) return;
    // `send` answers 0 for a frame dropped (the client is past the backpressure limit): the socket
    // is being closed then; never send past a dropped frame (nor leave it open, should Bun not close it).
    if (frames.length === 1) {
      if (ws.send(frames[0]!) === 0) ws.terminate();
    } else
      ws.cork(() => {
        for (const f of frames)
          if (ws.send(f) === 0) {
            ws.terminate();
            return;
          }
      });
  };
  return {
    send(text) {
      if (queue !== null) queue.push(text);
      else {
        queue = [text];
        setImmediate(flush);
      }
    },
    close(code, reason) {
      flush();
      ws.close(code, reason);
    },
  };
}
