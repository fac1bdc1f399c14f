/**
 * The one table of permanent account failures: an upstream error code that means the account's
 * credentials (or the account itself) are dead, the status it leaves the account in, and the reason
 * shown to the operator. Used by token refresh, usage polling and request-time failover alike.
 *
 * @module
 */

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
