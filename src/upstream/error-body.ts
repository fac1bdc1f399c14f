/**
 * Reads an error code, type and message out of an upstream error body, whatever shape it has:
 * `{"error":{"code","message"}}`, `{"error":{"error","error_description"}}`, `{"error":"invalid_grant",
 * "error_description":…}`, `{"error_code":…}`, `{"code":…}`, or plain text. Used for OAuth token
 * refresh, `/wham/usage` and `/codex/responses` failures alike.
 *
 * @module
 */
import type { FailureDetails } from "../plugin-host/hooks.ts";

type Json = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === "string" && v.trim() !== "" ? v : null);

/** Parses `text` as JSON when it is JSON; a non-JSON body is treated as a message. */
export function parseErrorBody(text: string): Json {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Json;
  } catch {
    // not JSON
  }
  return { error: { message: text.trim().slice(0, 500) || null } };
}

/** Code, type and message from a parsed body; any of them may be null. */
export function readErrorFields(body: Json): {
  code: string | null;
  type: string | null;
  message: string | null;
} {
  const err = body.error;
  if (err && typeof err === "object" && !Array.isArray(err)) {
    const e = err as Json;
    return {
      code: str(e.code) ?? str(e.error) ?? str(body.error_code) ?? str(body.code),
      type: str(e.type),
      message: str(e.message) ?? str(e.error_description) ?? str(body.message),
    };
  }
  return {
    code: str(err) ?? str(body.error_code) ?? str(body.code),
    type: str(body.type),
    message: str(body.error_description) ?? str(body.message) ?? null,
  };
}

/** FailureDetails of an HTTP error answer. */
export function failureFromHttp(status: number, text: string): FailureDetails {
  const f = readErrorFields(parseErrorBody(text));
  return { httpStatus: status, errorCode: f.code, errorType: f.type, message: f.message, transport: false };
}

/** FailureDetails of a transport error (no answer at all: refused, reset, DNS, timeout). */
export function failureFromTransport(err: unknown): FailureDetails {
  const message = err instanceof Error ? err.message : String(err);
  const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
  return {
    httpStatus: null,
    errorCode: timeout ? "timeout" : "transport_error",
    errorType: null,
    message,
    transport: true,
  };
}
