/**
 * The Bun seam for HTTP and WebSocket: puts a `serve(Request, peerIp) → Response | WsAccept` on a
 * socket with Bun.serve and stops it gracefully. A request the app accepted as a WebSocket upgrade
 * (it answered a {@link WsAccept}, see `src/core/websocket.ts`) is upgraded here, after the app
 * (admission, API key, route) has run, and its session is fed the socket's messages. Nothing else in the code base calls Bun.serve.
 *
 * @module
 */
import type { ServerWebSocket } from "bun";
import type { WsAccept, WsSession } from "../../core/websocket.ts";

export interface Listening {
  readonly host: string;
  readonly port: number;
  /** Stops accepting; waits up to `graceMs` for in-flight requests, then closes what is left. */
  close(graceMs: number): Promise<void>;
}

export function listen(
  handler: (request: Request, peerIp: string | null) => Promise<Response | WsAccept> | Response | WsAccept,
  opts: {
    host: string;
    port: number;
    maxRequestBodySize: number;
    maxWebSocketMessageBytes?: number;
    /**
     * Seconds a kept-alive connection may wait for its next request or spend sending that request's
     * headers (Bun's `idleTimeout`; 0: never). While the app handles a request, and while a stream
     * (`text/event-stream`) is sent, the limit is off: the app's own deadlines apply.
     */
    connectionIdleTimeoutSeconds: number;
    onError?: (e: Error) => void;
  },
): Listening {
  const idle = opts.connectionIdleTimeoutSeconds;
  const sockets = new Set<ServerWebSocket<WsSession>>();
  const server = Bun.serve<WsSession>({
    hostname: opts.host,
    port: opts.port,
    // Never Bun's development error page (source lines, working directory): JSON errors only.
    development: false,
    // Between requests and while the next request's headers arrive. Bun's fixed ~10 s limit covers a
    // new connection's first headers whatever this is.
    idleTimeout: idle,
    maxRequestBodySize: opts.maxRequestBodySize,
    async fetch(request, srv) {
      // The request is the app's now: its body deadline, upstream timeouts and stream idle timeout
      // apply, not the connection's idle limit (a non-streamed answer may take minutes to assemble).
      if (idle > 0) srv.timeout(request, 0);
      const answer = await handler(request, srv.requestIP(request)?.address ?? null);
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
      open(ws) {
        sockets.add(ws);
        ws.data.open({ send: (text) => void ws.send(text), close: (code, reason) => ws.close(code, reason) });
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
    error(e) {
      opts.onError?.(e);
      return new Response(
        JSON.stringify({ error: { code: "server_error", message: "Internal server error" } }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  });
  return {
    host: opts.host,
    port: server.port ?? opts.port,
    async close(graceMs) {
      // Open WebSockets would hold a graceful stop forever: tell their clients to reconnect elsewhere.
      for (const ws of sockets) ws.close(1001, "server shutting down");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceful = server.stop(false);
      const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), graceMs);
      });
      const how = await Promise.race([graceful.then(() => "done" as const), timeout]);
      clearTimeout(timer);
      if (how === "timeout") await server.stop(true);
    },
  };
}
