/**
 * Failure classification shared by the core and plugins: what an upstream error answer says
 * (`FailureDetails`, read from any body shape: `{"error":{"code","message"}}`,
 * `{"error":{"error","error_description"}}`, `{"error":"invalid_grant","error_description":…}`,
 * `{"error_code":…}`, `{"code":…}`, or plain text), and the one table of permanent account failures
 * (a code that means the account's credentials, or the account itself, are dead). Used for OAuth
 * token refresh, `/wham/usage` and `/codex/responses` failures alike.
 *
 * @module
 */

import { str } from "./coerce.ts";

/** What failed and how, as read from an upstream answer (HTTP status, JSON body or SSE event). */
export interface FailureDetails {
  /** HTTP status, or null for a transport error (DNS, reset, timeout). */
  readonly httpStatus: number | null;
  /** Error code read from the body (`error.code`, `error` string, `error_code`, `code`), if any. */
  readonly errorCode: string | null;
  readonly errorType: string | null;
  readonly message: string | null;
  /** True for network errors and timeouts: nothing was heard from the server. */
  readonly transport: boolean;
}

type Json = Record<string, unknown>;

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

/**
 * A transport error's message for the client and the log: the runtime's text without its advice to
 * its own developers ("For more information, pass `verbose: true` …").
 */
export function transportMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*For more information\b.*$/s, "");
}

/** FailureDetails of a transport error (no answer at all: refused, reset, DNS, timeout). */
export function failureFromTransport(err: unknown): FailureDetails {
  const message = transportMessage(err);
  const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
  return {
    httpStatus: null,
    errorCode: timeout ? "timeout" : "transport_error",
    errorType: null,
    message,
    transport: true,
  };
}

// --- permanent account failures: code -> status left and reason shown to the operator

export type PermanentStatus = "reauth_required" | "deactivated";

export const permanentFailureCodes: Readonly<
  Record<string, { readonly status: PermanentStatus; readonly reason: string }>
> = {
  refresh_token_expired: { status: "reauth_required", reason: "Refresh token expired - re-login required" },
  refresh_token_reused: { status: "reauth_required", reason: "Refresh token was reused - re-login required" },
  refresh_token_invalidated: {
    status: "reauth_required",
    reason: "Refresh token was revoked - re-login required",
  },
  invalid_grant: { status: "reauth_required", reason: "Refresh token grant invalid - re-login required" },
  token_invalidated: {
    status: "reauth_required",
    reason: "Authentication token invalidated - re-login required",
  },
  token_expired: { status: "reauth_required", reason: "Authentication token expired - re-login required" },
  app_session_terminated: { status: "reauth_required", reason: "ChatGPT session ended - re-login required" },
  account_session_expired: { status: "reauth_required", reason: "ChatGPT session ended - re-login required" },
  account_auth_invalidated: {
    status: "reauth_required",
    reason: "Authentication failed after token refresh - re-login required",
  },
  account_deactivated: { status: "deactivated", reason: "Account has been deactivated" },
  account_suspended: { status: "deactivated", reason: "Account has been suspended" },
  account_deleted: { status: "deactivated", reason: "Account has been deleted" },
};

/** The permanent classification of `code`, or null when the code is not permanent (or absent). */
export function permanentFailure(
  code: string | null | undefined,
): { status: PermanentStatus; reason: string } | null {
  if (!code) return null;
  return Object.hasOwn(permanentFailureCodes, code) ? permanentFailureCodes[code]! : null;
}
