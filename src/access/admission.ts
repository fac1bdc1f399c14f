/**
 * Admission: the one check every request passes before any route sees it, whether the framework
 * dispatches it (admin API, dashboard, models) or the proxy pipeline serves it directly
 * (`src/proxy/pipeline.ts`). In order: a declared body over the size limit (413), the request's
 * shape (cross-origin writes 403, admin bodies that are not JSON 415), the `request.admit` hook
 * (firewall plugin: 403/429), then access control (API key on the proxy surface, session on the
 * admin surface). A refusal is answered here, in the envelope of the path's family, and logged.
 *
 * @module
 */
import { envelopeFor, errorResponse, GatewayError, rejectionError } from "../core/errors.ts";
import type { Logger } from "../core/logging.ts";
import { withoutTrailingSlashes } from "../core/paths.ts";
import type { RequestInfo } from "../core/request-info.ts";
import { type Surface, surfaceOf } from "../core/surface.ts";
import type { Action } from "../plugin-host/actions.ts";
import type { HookBus, HookOutcome } from "../plugin-host/hooks.ts";
import type { AccessControl } from "./access-control.ts";
import { isPublicAdminPath } from "./admin-auth/guard.ts";
import { contentTypeRefusal, crossOriginRefusal } from "./csrf.ts";

export interface AdmissionOptions {
  readonly maxBodyBytes: number;
  /** Origins allowed besides the gateway's own (normalised, see `normalizeOrigin`). */
  readonly allowedOrigins: ReadonlySet<string>;
  readonly access: AccessControl;
  readonly bus: Pick<HookBus, "run">;
  readonly log: Logger;
  readonly clock: () => number;
  /** Told the actions of each `request.admit` run (the metrics' counters). */
  readonly onAdmitActions?: (actions: readonly Action[]) => void;
}

/**
 * Admits one request: null when it may go on (then `info.clientIp`, `info.apiKeyId` and
 * `info.authenticated` are set), else the answer to send. `info.requestId` is already chosen. The
 * answer comes at once (not a promise) when every step answers from what is cached (the firewall
 * list, the settings, the API key): the usual request is admitted without an async frame.
 */
export type Admit = (
  request: Request,
  url: URL,
  info: RequestInfo,
) => Response | null | Promise<Response | null>;

export function createAdmission(opts: AdmissionOptions): Admit {
  const { maxBodyBytes, allowedOrigins, access, bus, log, clock, onAdmitActions } = opts;
  return function admit(request, url, info) {
    const path = url.pathname;
    const envelope = envelopeFor(path);
    // Looser than `declaredLength` (core/body-guard.ts says why): any value that reads as a number.
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > maxBodyBytes) {
      return errorResponse(new GatewayError("payload_too_large"), envelope, info.requestId);
    }
    const surface = surfaceOf(path);
    const shapeRefusal =
      crossOriginRefusal(request, url, {
        allowedOrigins,
        httpsByProxy: access.isHttps(request, info.peerIp),
      }) ?? contentTypeRefusal(request, surface, path);
    if (shapeRefusal) {
      log.info(
        {
          requestId: info.requestId,
          method: request.method,
          path,
          peerIp: info.peerIp,
          origin: request.headers.get("origin")?.slice(0, 200) ?? null,
          code: shapeRefusal.code,
        },
        "request refused before admission",
      );
      return errorResponse(shapeRefusal, envelope, info.requestId);
    }
    info.clientIp = access.clientIpOf(request, info.peerIp);
    if (surface === "public" && path.startsWith("/health")) return null;
    const outcome = bus.run("request.admit", {
      requestId: info.requestId,
      method: request.method,
      path,
      headers: request.headers,
      peerIp: info.peerIp,
      clientIp: info.clientIp,
      surface,
      now: clock(),
    });
    return outcome instanceof Promise
      ? outcome.then((o) => admitted(request, path, surface, url, info, o))
      : admitted(request, path, surface, url, info, outcome);
  };

  /** After the hook: its refusal, else access control. */
  function admitted(
    request: Request,
    path: string,
    surface: Surface,
    url: URL,
    info: RequestInfo,
    outcome: HookOutcome,
  ): Response | null | Promise<Response | null> {
    onAdmitActions?.(outcome.actions);
    const reject = outcome.actions.find((a) => a.type === "request.reject");
    if (reject && reject.type === "request.reject") {
      log.info(
        {
          requestId: info.requestId,
          path,
          peerIp: info.peerIp,
          clientIp: info.clientIp,
          code: reject.code,
        },
        "request refused at admission",
      );
      return errorResponse(rejectionError(reject), envelopeFor(path), info.requestId);
    }
    if (outcome.failed) {
      return errorResponse(
        new GatewayError("server_error", "Request admission failed"),
        envelopeFor(path),
        info.requestId,
      );
    }
    const refused = access.admit(request, surface, url, info);
    return refused instanceof Promise
      ? refused.then((r) => answered(request, path, surface, info, r))
      : answered(request, path, surface, info, refused);
  }

  /** After access control: go on (null), or its refusal. */
  function answered(
    request: Request,
    path: string,
    surface: Surface,
    info: RequestInfo,
    refused: GatewayError | null,
  ): Response | null {
    // Authenticated (a key, a session, or this machine) on a guarded route: the request no longer
    // counts against its address's unauthenticated cap.
    if (!refused && surface !== "public" && !isPublicAdminPath(path)) {
      info.authenticated = true;
      info.releaseBodySlot?.();
    }
    if (!refused) return null;
    log.info(
      {
        requestId: info.requestId,
        path,
        peerIp: info.peerIp,
        clientIp: info.clientIp,
        code: refused.code,
      },
      "request refused by access control",
    );
    if (
      refused.code === "authentication_required" &&
      request.method === "GET" &&
      withoutTrailingSlashes(path) === "/docs" &&
      (request.headers.get("accept") ?? "").includes("text/html")
    ) {
      // A browser opening the docs without a session: log in on the dashboard, then come back.
      return new Response(null, {
        status: 303,
        headers: { location: "/dashboard/login?next=/docs", "x-request-id": info.requestId },
      });
    }
    return errorResponse(refused, envelopeFor(path), info.requestId);
  }
}
