/**
 * Upstream failures as the proxy sees them (HTTP error status, an error as the first SSE event,
 * or a transport error) and how one is shown to the client when it is not failed over.
 *
 * @module
 */

import { num, str } from "../core/coerce.ts";
import { errorTypeForStatus, GatewayError } from "../core/errors.ts";
import type { FailureDetails } from "../core/failures.ts";
import { failureFromHttp, parseErrorBody } from "../core/failures.ts";
import type { EpochMs } from "../core/types.ts";
import { isObject, type Json } from "./validate.ts";

export interface AttemptFailure extends FailureDetails {
  readonly phase: "http" | "sse" | "transport";
  readonly resetsAt: EpochMs | null;
  readonly resetsInSeconds: number | null;
  /** Extra envelope fields worth passing to the client (`plan_type`, `resets_at`, ...). */
  readonly extra: Readonly<Record<string, string | number | null>>;
}

function resetFields(err: Json | null): Pick<AttemptFailure, "resetsAt" | "resetsInSeconds" | "extra"> {
  if (!err) return { resetsAt: null, resetsInSeconds: null, extra: {} };
  const at = num(err.resets_at);
  const inSec = num(err.resets_in_seconds);
  const extra: Record<string, string | number | null> = {};
  if (at !== null) extra.resets_at = at;
  if (inSec !== null) extra.resets_in_seconds = inSec;
  if (str(err.plan_type)) extra.plan_type = err.plan_type as string;
  return { resetsAt: at === null ? null : at * 1000, resetsInSeconds: inSec, extra };
}

/** A non-2xx upstream answer. */
export function httpFailure(status: number, text: string): AttemptFailure {
  const body = parseErrorBody(text);
  const err = isObject(body.error) ? body.error : body;
  return { ...failureFromHttp(status, text), phase: "http", ...resetFields(err) };
}

/** A transport failure (nothing heard). */
export function transportFailure(details: FailureDetails): AttemptFailure {
  return { ...details, phase: "transport", resetsAt: null, resetsInSeconds: null, extra: {} };
}

/** The error object of an `error` or `response.failed` event. */
export function eventError(json: Json): Json {
  if (json.type === "response.failed" && isObject(json.response) && isObject(json.response.error)) {
    return json.response.error;
  }
  if (isObject(json.error)) return json.error;
  return json;
}

/** An error event (`error`, `response.failed`) read before anything reached the client. */
export function sseFailure(json: Json): AttemptFailure {
  const err = eventError(json);
  const code = str(err.code)?.toLowerCase() ?? str(err.type)?.toLowerCase() ?? "upstream_error";
  return {
    httpStatus: null,
    errorCode: code,
    errorType: str(err.type),
    message: str(err.message),
    transport: false,
    phase: "sse",
    ...resetFields(err),
  };
}

/** HTTP status for an error that arrived inside a stream (one table). */
export function statusForStreamError(code: string | null, type: string | null): number {
  const k = new Set([code, type]);
  const has = (...xs: string[]) => xs.some((x) => k.has(x));
  if (has("authentication_error", "invalid_api_key", "invalid_authentication", "token_invalidated"))
    return 401;
  if (has("permission_error", "insufficient_permissions")) return 403;
  if (has("not_found")) return 404;
  if (has("rate_limit_error", "rate_limit_exceeded", "usage_limit_reached", "insufficient_quota")) return 429;
  if (has("invalid_request_error", "context_length_exceeded")) return 400;
  return 502;
}

/** The GatewayError the client gets for a failure that is not (or no longer) failed over. */
export function failureError(f: AttemptFailure): GatewayError {
  if (f.phase === "transport") {
    const timeout = f.errorCode === "timeout";
    return new GatewayError(
      timeout ? "upstream_timeout" : "upstream_unavailable",
      `Upstream ${timeout ? "timed out" : "unreachable"}: ${f.message ?? "transport error"}`,
    );
  }
  const status =
    f.phase === "http" && f.httpStatus !== null
      ? f.httpStatus
      : statusForStreamError(f.errorCode, f.errorType);
  const code = f.errorCode ?? (status >= 500 ? "upstream_error" : "invalid_request_error");
  const err = new GatewayError("server_error", f.message ?? `Upstream error: HTTP ${status}`, f.extra);
  const type = f.errorType ?? errorTypeForStatus(status);
  return Object.assign(err, { code, status: status >= 400 && status <= 599 ? status : 502, type });
}
