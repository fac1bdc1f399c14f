/**
 * The upgrade of `GET /backend-api/codex/responses` and `GET /v1/responses` to a Responses
 * WebSocket. By the time the route runs, the app has admitted the request like any HTTP one
 * (firewall, API key: refusals are real HTTP answers); the route only offers the session and the
 * `x-codex-turn-state` header (the client's, else a new `turn_<32 hex>`). A plain GET is a 426.
 *
 * @module
 */
import { GatewayError } from "../../core/errors.ts";
import type { RequestInfo } from "../../core/request-info.ts";
import { wantsWebSocket } from "../../core/websocket.ts";
import type { ProxyContext } from "../context.ts";
import { ResponsesSocket } from "./session.ts";

const TURN_STATE = /^[A-Za-z0-9._:+/=-]{1,512}$/;

/** The turn state to answer with: the client's when sane, else a new one. */
export function turnStateFor(headers: Headers): string {
  const given = headers.get("x-codex-turn-state");
  if (given && TURN_STATE.test(given)) return given;
  return `turn_${crypto.randomUUID().replace(/-/g, "")}`;
}

export function acceptResponsesSocket(
  ctx: ProxyContext,
  request: Request,
  info: RequestInfo,
  kind: "codex" | "responses",
  endpoint: string,
): Response {
  if (!wantsWebSocket(request)) {
    throw new GatewayError(
      "upgrade_required",
      `GET ${endpoint} is the Responses WebSocket: send an upgrade request (or POST for HTTP)`,
    );
  }
  const turnState = turnStateFor(request.headers);
  const session = new ResponsesSocket(ctx, request.headers, info, { kind, endpoint, turnState });
  // The accepted upgrade travels in the request's facts; the server seam performs it.
  info.upgrade = { headers: new Headers({ "x-codex-turn-state": turnState }), session };
  // Replaced by the 101 answer of the upgrade.
  return new Response(null, { status: 204 });
}
