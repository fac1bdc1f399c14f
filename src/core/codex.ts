/**
 * Facts about the ChatGPT/Codex upstream that the core and plugins share.
 *
 * @module
 */

/** The Codex CLI's OAuth client id (logins, device codes and token refreshes all use it). */
export const OAUTH_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann";
