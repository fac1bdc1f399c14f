/**
 * The typed per-request facts every request carries from the server seam on: the socket peer, the
 * request id, when it started, and what admission learned (client address, API key). The gateway
 * creates one {@link RequestInfo} per request (`newRequestInfo`). The proxy pipeline
 * (`src/proxy/pipeline.ts`) is handed it directly, inside its `ProxyRequestContext`; requests the
 * framework dispatches (admin API, dashboard, models, WebSocket upgrades) find it with
 * {@link infoOf}, since a framework route receives only the Request.
 *
 * @module
 */

import type { Random } from "./clock.ts";
import type { EpochMs } from "./types.ts";
import type { WsAccept } from "./websocket.ts";

export interface RequestInfo {
  /** Address of the socket peer, or null when unknown (in-process `app.handle` calls). */
  readonly peerIp: string | null;
  /**
   * The client's address: the peer, or what a trusted proxy's Forwarded / X-Forwarded-For names;
   * null when unknown or when a trusted proxy sent a malformed header (fail closed). Set at
   * admission by access control; request logs store this one.
   */
  clientIp: string | null;
  requestId: string;
  readonly startedAt: number;
  /** The API key that authenticated a proxy request (set by access control), if any. */
  apiKeyId?: string | null;
  /** Frees the request's unauthenticated-body slot (see BodyGuard) once admission has passed. */
  releaseBodySlot?: () => void;
  /**
   * True once the request passed access control on a guarded route (a key, a session, or this
   * machine). An answer to any other request closes its connection (`Connection: close`).
   */
  authenticated?: boolean;
  /** Set by a route that writes its own, richer access line (the proxy); the app's line is skipped. */
  accessLogged?: boolean;
  /**
   * Set by a route that accepts this request's WebSocket upgrade (its HTTP answer is then unused):
   * the gateway's `serve` hands it to the server seam, which performs the upgrade.
   */
  upgrade?: WsAccept;
}

/** The facts of a new request (`startedAt`: now, on the monotonic clock). */
export function newRequestInfo(peerIp: string | null, requestId: string): RequestInfo {
  return { peerIp, clientIp: null, requestId, startedAt: performance.now(), apiKeyId: null };
}

const infos = new WeakMap<Request, RequestInfo>();

/** Gives a framework-dispatched request its facts (called by the gateway before dispatch). */
export function attachInfo(request: Request, info: RequestInfo): void {
  infos.set(request, info);
}

/** The facts of a framework-dispatched request (empty ones for a request the gateway never saw). */
export function infoOf(request: Request): RequestInfo {
  let info = infos.get(request);
  if (!info) {
    info = { peerIp: null, clientIp: null, requestId: "", startedAt: performance.now() };
    infos.set(request, info);
  }
  return info;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The client's `x-request-id` (or `request-id`) when it is sane, else a new time-ordered UUID
 * (version 7, {@link Random.timeOrderedId}): the request-log's request-id index then grows at its end.
 */
export function chooseRequestId(headers: Headers, now: EpochMs, random: Random): string {
  const given = headers.get("x-request-id") ?? headers.get("request-id");
  return given && ID.test(given) ? given : random.timeOrderedId(now);
}
