/**
 * Cross-site request refusal (CSRF) and the content types state-changing requests may carry. A web
 * page the operator has open can make the browser send requests to `localhost:2455`; the browser
 * then says where they come from (`Origin`, `Sec-Fetch-Site`), which non-browser clients (SDKs, the
 * Codex CLI, curl) never send. The rules, applied to every surface before any other admission step:
 *
 * - A request is state-changing unless its method is GET, HEAD or OPTIONS; a WebSocket upgrade is
 *   state-changing too (it opens a proxy session).
 * - A state-changing request with an `Origin` is served only when that origin is the gateway's own
 *   (the request URL's scheme and host, or https behind a trusted proxy that says so) or one of
 *   `CODEX_LB_ALLOWED_ORIGINS`; `Origin: null` (sandboxed frames, files) is never allowed.
 * - Without `Origin`, `Sec-Fetch-Site: cross-site` or `same-site` (another port or subdomain) is
 *   refused; `same-origin`, `none` or no header at all goes on.
 * - Admin (`/api/*`) state-changing requests accept only JSON bodies (`application/json` or
 *   `application/*+json`) — the one exception is `multipart/form-data` on the upload routes of
 *   {@link formUploadPaths}; proxy POSTs need a JSON content type ({@link requireJsonContentType},
 *   called by each proxy route before it reads the body). Anything else is 415. A browser
 *   cannot send a JSON content type across origins without a CORS preflight, which the gateway never
 *   grants.
 *
 * @module
 */

import { GatewayError } from "../core/errors.ts";
import { withoutTrailingSlashes } from "../core/paths.ts";
import type { Surface } from "../core/surface.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Admin routes that also take a `multipart/form-data` upload (a file picker). */
export const formUploadPaths: readonly string[] = ["/api/accounts/import", "/api/import/python"];

/** True for requests that may change state (see the module doc). */
export function isStateChanging(request: Request): boolean {
  if (!SAFE_METHODS.has(request.method)) return true;
  return (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}

/** `https://Example.com:443/` → `https://example.com`; null when not an http(s) origin. */
export function normalizeOrigin(value: string): string | null {
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Null when the request may go on, else the 403 `cross_origin_refused` to answer with.
 * `httpsByProxy`: a trusted proxy says the client used https (its origin is then `https://host`).
 */
export function crossOriginRefusal(
  request: Request,
  url: URL,
  opts: { readonly allowedOrigins: ReadonlySet<string>; readonly httpsByProxy: boolean },
): GatewayError | null {
  if (!isStateChanging(request)) return null;
  const origin = request.headers.get("origin");
  if (origin !== null) {
    const given = normalizeOrigin(origin.trim());
    if (given !== null) {
      const own = url.origin.toLowerCase();
      if (given === own || opts.allowedOrigins.has(given)) return null;
      if (opts.httpsByProxy && given === `https://${url.host.toLowerCase()}`) return null;
    }
    return new GatewayError(
      "cross_origin_refused",
      `Requests from origin ${JSON.stringify(origin.slice(0, 200))} are refused; add it to CODEX_LB_ALLOWED_ORIGINS to allow it`,
    );
  }
  const site = (request.headers.get("sec-fetch-site") ?? "").trim().toLowerCase();
  if (site === "cross-site" || site === "same-site") {
    return new GatewayError(
      "cross_origin_refused",
      "Requests from another web site are refused (Sec-Fetch-Site)",
    );
  }
  return null;
}

function mediaTypeOf(request: Request): string | null {
  const raw = request.headers.get("content-type");
  if (raw === null) return null;
  return raw.split(";")[0]!.trim().toLowerCase();
}

function isJson(type: string): boolean {
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/** Looser than `declaredLength` (core/body-guard.ts says why): any length but "0" claims a body. */
function claimsBody(request: Request): boolean {
  if (request.headers.has("transfer-encoding")) return true;
  const length = request.headers.get("content-length");
  return length !== null && length.trim() !== "0";
}

/** Null when an admin request's content type is acceptable, else a 415 (other surfaces: null). */
export function contentTypeRefusal(request: Request, surface: Surface, path: string): GatewayError | null {
  if (surface !== "admin" || SAFE_METHODS.has(request.method)) return null;
  const type = mediaTypeOf(request);
  if (type === null) {
    if (!claimsBody(request)) return null;
  } else if (isJson(type)) return null;
  else if (type === "multipart/form-data" && formUploadPaths.includes(withoutTrailingSlashes(path)))
    return null;
  return new GatewayError(
    "unsupported_media_type",
    "The admin API accepts only JSON bodies: send 'Content-Type: application/json'",
  );
}

/**
 * Throws 415 unless the request declares a JSON body. Proxy routes call it before reading their
 * body (so an unknown proxy path is still a 404, and a `text/plain` form post never spends quota).
 */
export function requireJsonContentType(request: Request): void {
  const type = mediaTypeOf(request);
  if (type !== null && isJson(type)) return;
  throw new GatewayError(
    "unsupported_media_type",
    "Send the request body as JSON with 'Content-Type: application/json'",
  );
}
