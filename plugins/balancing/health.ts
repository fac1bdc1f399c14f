/**
 * Account health as the balancer sees it. The rules (backoff arithmetic, usability, the per-account
 * health summary the accounts listing shows) are the core's `src/core/health.ts`;
 * this plugin emits `account.healthy` after a success, which clears a backoff.
 *
 * @module
 */
// The rules themselves are the core's (src/core/health.ts); re-exported for the plugin's callers.
export {
  type AccountHealth,
  accountHealth,
  BACKOFF_BASE_SECONDS,
  BACKOFF_MAX_SECONDS,
  BACKOFF_THRESHOLD,
  backoffSeconds,
  backoffUntil,
  isUsable,
  usableAgainAt,
} from "../../src/plugin-api.ts";
