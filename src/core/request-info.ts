/**
 * The typed per-request facts every request carries from the server seam on: the socket peer, the
 * request id, when it started, and what admission learned (client address, API key). The gateway
 * creates one {@link RequestInfo} per request (`newRequestInfo`) and passes it along: the proxy
 * pipeline (`src/proxy/pipeline.ts`) gets it inside its `ProxyRequestContext`; a route the framework
 * dispatches (admin API, dashboard, models, WebSocket upgrades) gets it as `info` on its typed
 * context, declared by the {@link requestInfo} plugin every route module uses. No table keyed by
 * Request holds it.
 *
 * @module
 */

import { Elysia } from "elysia";
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
   * The body's text under the body guard's limit and deadline, read in one go when its declared
   * length frames it (see `GuardedBody.text`); set by the gateway on a framework-dispatched request
   * with a body (a route that reads the body itself, such as the proxy routes' framework path).
   */
  readBody?: () => Promise<string>;
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

/**
 * The `info` of a framework context before the app's request hook put the request's own there:
 * frozen, so a handler that ever ran without the hook would fail at its first write instead of
 * sharing facts with other requests.
 */
const NOT_YET: RequestInfo = Object.freeze({ peerIp: null, clientIp: null, requestId: "", startedAt: 0 });

/**
 * Declares `info` ({@link RequestInfo}) on the typed context of every route of the module that uses
 * it. The app's request hook (`src/app/app.ts`) sets the request's own facts there before any route,
 * hook or error handler runs.
 */
export const requestInfo = new Elysia({ name: "request-info" }).decorate("info", NOT_YET);

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The client's `x-request-id` (or `request-id`) when it is sane, else a new time-ordered UUID
 * (version 7, {@link Random.timeOrderedId}): the request-log's request-id index then grows at its end.
 */
export function chooseRequestId(headers: Headers, now: EpochMs, random: Random): string {
  const given = headers.get("x-request-id") ?? headers.get("request-id");
  return given && ID.test(given) ? given : random.timeOrderedId(now);
}
