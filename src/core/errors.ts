/**
 * The one catalogue of error codes the gateway answers with: each code has its HTTP status, its
 * OpenAI `type` and a default message. Routes throw {@link GatewayError} with a code; the app's
 * error handler renders it in the envelope of the route family (see {@link envelopeFor}).
 *
 * @module
 */

export interface ErrorSpec {
  readonly status: number;
  /** OpenAI error `type` (also used to pick a family for dashboard clients). */
  readonly type: string;
  readonly message: string;
}

const spec = (status: number, type: string, message: string): ErrorSpec => ({ status, type, message });

export const errorCatalogue = {
  // --- request shape
  invalid_request_error: spec(400, "invalid_request_error", "Invalid request payload"),
  bad_request: spec(400, "invalid_request_error", "Malformed request"),
  validation_error: spec(400, "invalid_request_error", "Invalid request payload"),
  invalid_json: spec(400, "invalid_request_error", "Request body is not valid JSON"),
  invalid_function_parameters: spec(
    400,
    "invalid_request_error",
    "Invalid function parameters for strict mode",
  ),
  invalid_json_schema: spec(400, "invalid_request_error", "Invalid JSON schema for strict mode"),
  invalid_auth_json: spec(400, "invalid_request_error", "Invalid auth.json"),
  request_timeout: spec(408, "invalid_request_error", "The request body did not arrive in time"),
  python_import_invalid: spec(
    400,
    "invalid_request_error",
    "Not an importable Python codex-lb store and key",
  ),
  python_import_wrong_key: spec(
    400,
    "invalid_request_error",
    "The key does not decrypt the Python codex-lb store's secrets; nothing was written",
  ),
  payload_too_large: spec(413, "invalid_request_error", "Request body exceeds the maximum allowed size"),
  unsupported_media_type: spec(415, "invalid_request_error", "Unsupported content type"),
  not_found: spec(404, "invalid_request_error", "Not found"),
  upgrade_required: spec(
    426,
    "invalid_request_error",
    "This endpoint speaks WebSocket: send an upgrade request",
  ),
  method_not_allowed: spec(405, "invalid_request_error", "Method not allowed"),
  conflict: spec(409, "invalid_request_error", "Conflict"),
  settings_conflict: spec(
    409,
    "invalid_request_error",
    "Settings were changed by someone else; reload them and apply your change again",
  ),
  model_not_found: spec(404, "invalid_request_error", "The model does not exist"),
  account_not_found: spec(404, "invalid_request_error", "Account not found"),
  reauth_required: spec(
    409,
    "invalid_request_error",
    "The account needs a new login (browser, device code or auth.json import); it cannot be reactivated",
  ),
  oauth_flow_not_found: spec(404, "invalid_request_error", "Unknown or expired login flow"),
  oauth_error: spec(502, "server_error", "The OpenAI auth server refused the login"),
  // --- who may call
  invalid_api_key: spec(401, "authentication_error", "Invalid or missing API key"),
  authentication_required: spec(401, "authentication_error", "Authentication required"),
  invalid_credentials: spec(401, "authentication_error", "Invalid credentials"),
  totp_required: spec(401, "authentication_error", "A TOTP code (or a recovery code) is required"),
  invalid_totp_code: spec(400, "invalid_request_error", "Invalid or already used TOTP code"),
  password_not_configured: spec(409, "invalid_request_error", "No admin password is set yet"),
  permission_denied: spec(403, "permission_error", "Permission denied"),
  ip_not_allowed: spec(403, "permission_error", "Client address is not allowed"),
  cross_origin_refused: spec(
    403,
    "permission_error",
    "State-changing requests from another web origin are refused",
  ),
  model_not_allowed: spec(403, "permission_error", "This API key may not use the requested model"),
  // --- limits
  rate_limit_exceeded: spec(429, "rate_limit_error", "Rate limit exceeded"),
  too_many_attempts: spec(429, "rate_limit_error", "Too many attempts, try again later"),
  too_many_pending_requests: spec(
    429,
    "rate_limit_error",
    "Too many unauthenticated requests from this address are still in progress",
  ),
  proxy_overloaded: spec(429, "rate_limit_error", "All eligible accounts are at their concurrency cap"),
  usage_limit_reached: spec(429, "usage_limit_reached", "The usage limit has been reached on every account"),
  // --- the pool and the upstream
  no_accounts: spec(503, "server_error", "No usable account is configured"),
  account_unavailable: spec(503, "server_error", "The account that holds this conversation is unavailable"),
  upstream_error: spec(502, "server_error", "Upstream request failed"),
  upstream_timeout: spec(504, "server_error", "Upstream did not answer in time"),
  upstream_unavailable: spec(502, "server_error", "No upstream account could serve the request"),
  stream_incomplete: spec(502, "server_error", "Upstream stream ended before a terminal event"),
  stream_idle_timeout: spec(504, "server_error", "Upstream stream went silent for too long"),
  service_unavailable: spec(503, "server_error", "Service unavailable"),
  account_unusable: spec(503, "server_error", "The account cannot be used until it is logged in again"),
  refresh_failed: spec(502, "server_error", "Token refresh failed; the account is backing off"),
  server_error: spec(500, "server_error", "Internal server error"),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/**
 * The OpenAI error `type` for an HTTP status when the upstream gave none (one table, used for every
 * upstream failure shown to a client): 429 `rate_limit_error`, 5xx `server_error`, 401
 * `authentication_error`, any other status `invalid_request_error`.
 */
export function errorTypeForStatus(status: number): string {
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  if (status === 401) return "authentication_error";
  return "invalid_request_error";
}

/** Extra fields some errors carry in their envelope (OpenAI `param`, `resets_at`, ...). */
export type ErrorExtra = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** An error with a catalogue code; everything the gateway refuses on purpose is one of these. */
export class GatewayError extends Error {
  override name = "GatewayError";
  readonly status: number;
  readonly type: string;
  constructor(
    readonly code: ErrorCode | (string & {}),
    message?: string,
    readonly extra: ErrorExtra = {},
    readonly headers: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    const s: ErrorSpec = errorCatalogue[code as ErrorCode] ?? errorCatalogue.server_error;
    super(message ?? s.message, options);
    this.status = s.status;
    this.type = s.type;
  }
}

/** A `request.reject` action as an error: catalogue codes take their status and type from the table. */
export function rejectionError(r: {
  readonly code: string;
  readonly status?: number;
  readonly message?: string;
  readonly errorType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly extra?: ErrorExtra;
}): GatewayError {
  if (Object.hasOwn(errorCatalogue, r.code)) {
    return new GatewayError(r.code as ErrorCode, r.message, r.extra ?? {}, r.headers ?? {});
  }
  const err = new GatewayError("server_error", r.message ?? r.code, r.extra ?? {}, r.headers ?? {});
  return Object.assign(err, {
    code: r.code,
    status: r.status ?? 400,
    type: r.errorType ?? "invalid_request_error",
  });
}

export type Envelope = "openai" | "admin";

/** OpenAI-compatible routes answer in the OpenAI envelope; the rest in the admin envelope. */
export function envelopeFor(pathname: string): Envelope {
  return pathname.startsWith("/v1") || pathname.startsWith("/backend-api") ? "openai" : "admin";
}

/** Renders an error as a JSON body in the given envelope. */
export function errorBody(err: GatewayError, envelope: Envelope): unknown {
  if (envelope === "openai") {
    const body: Record<string, unknown> = {
      message: err.message,
      type: err.type,
      code: err.code,
      param: null,
    };
    for (const [k, v] of Object.entries(err.extra)) if (v !== undefined) body[k] = v;
    return { error: body };
  }
  const body: Record<string, unknown> = { code: err.code, message: err.message };
  for (const [k, v] of Object.entries(err.extra)) if (v !== undefined) body[k] = v;
  return { error: body };
}

/** A JSON Response for a gateway error, with its status and headers. */
export function errorResponse(err: GatewayError, envelope: Envelope, requestId?: string): Response {
  const headers = new Headers({ "content-type": "application/json", ...err.headers });
  if (requestId) headers.set("x-request-id", requestId);
  return new Response(JSON.stringify(errorBody(err, envelope)), { status: err.status, headers });
}

/** Normalises anything thrown into an Error, keeping the original as `cause` (Hono's toError). */
export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === "string" ? e : "non-error thrown", { cause: e });
}
