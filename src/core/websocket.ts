/**
 * The runtime-neutral shape of a server-side WebSocket: a route decides to accept an upgrade by
 * setting a {@link WsAccept} on the request's typed facts (`RequestInfo.upgrade`, see
 * `src/core/request-info.ts`); the gateway's `serve` answers the server seam with it instead of a
 * Response, and the seam (`src/runtime/bun/serve.ts`) performs the upgrade with its response headers
 * and feeds the session the socket's life (open, each message, close). Nothing here knows which
 * runtime does the upgrade.
 *
 * @module
 */

/** The sending side of an accepted socket. */
export interface WsPeer {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/** One accepted socket's behaviour. */
export interface WsSession {
  open(peer: WsPeer): void;
  message(data: string | Uint8Array): void;
  /** The socket is closed (by either side); release everything. */
  close(code: number, reason: string): void;
}

/** A route's decision to accept a WebSocket upgrade. */
export interface WsAccept {
  /** Extra headers of the 101 answer (e.g. `x-codex-turn-state`). */
  readonly headers: Headers;
  readonly session: WsSession;
}

/** True when `request` asks for a WebSocket upgrade. */
export function wantsWebSocket(request: Request): boolean {
  return (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}
