/**
 * The runtime-neutral shape of a server-side WebSocket: a route decides to accept an upgrade by
 * {@link offerUpgrade offering} a session for the request; the server seam
 * (`src/runtime/bun/serve.ts`) {@link takeUpgrade takes} it after the app answered, performs the
 * upgrade with the session's response headers, and feeds the session the socket's life
 * (open, each message, close). Nothing here knows which runtime does the upgrade.
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

const offers = new WeakMap<Request, WsAccept>();

/** Called by a route that accepts the upgrade of `request`; its HTTP answer is then ignored. */
export function offerUpgrade(request: Request, accept: WsAccept): void {
  offers.set(request, accept);
}

/** Called by the server seam once the app has answered `request`: the accepted upgrade, if any. */
export function takeUpgrade(request: Request): WsAccept | null {
  const a = offers.get(request) ?? null;
  offers.delete(request);
  return a;
}

/** True when `request` asks for a WebSocket upgrade. */
export function wantsWebSocket(request: Request): boolean {
  return (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}
