/**
 * The public plugin API: the one module every plugin imports, built-in (`plugins/`) or an operator's
 * own (listed in `CODEX_LB_PLUGINS`), and the package's export (`import … from "codex-lb"`). A plugin
 * imports this module and its own files, nothing else; `bun run lint` refuses any other import under
 * `plugins/**`. The contract is described in one page in `docs/plugins.md`.
 *
 * What it holds:
 * - the plugin shape ({@link definePlugin}, `Plugin`, `PluginContext`) and the hook events/actions;
 * - the error catalogue and its constructor ({@link GatewayError});
 * - the account health rules (backoff table, usability);
 * - failure classification (reading upstream error bodies, the permanent-failure table);
 * - address and CIDR helpers;
 * - reading loose JSON values ({@link str}, {@link trimmed}, {@link num}, {@link numeric}).
 *
 * A plugin that needs nothing at run time (only types) may `import type` from here; the compiled
 * binary then loads it from disk without this repository.
 *
 * @example
 * ```ts
 * import { definePlugin } from "codex-lb";
 * export default definePlugin({
 *   name: "acme.custom-codes",
 *   setup(ctx) {
 *     ctx.on("refresh.failed", (e) =>
 *       e.errorCode === "acme_banned"
 *         ? { type: "account.deactivate", accountId: e.account.id, status: "deactivated", reason: "Banned" }
 *         : undefined,
 *     { order: -10 });
 *   },
 * });
 * ```
 *
 * @module
 */

export {
  type Cidr,
  cidrContains,
  formatCidr,
  formatIp,
  type Ip,
  inRanges,
  isLoopback,
  normalizeIp,
  parseCidr,
  parseIp,
} from "./core/address.ts";
export { sleep } from "./core/clock.ts";
export { OAUTH_CLIENT_ID } from "./core/codex.ts";
export { num, numeric, str, trimmed } from "./core/coerce.ts";
export { type ErrorCode, type ErrorExtra, errorCatalogue, GatewayError } from "./core/errors.ts";
export {
  type FailureDetails,
  failureFromHttp,
  failureFromTransport,
  type PermanentStatus,
  parseErrorBody,
  permanentFailure,
  permanentFailureCodes,
  readErrorFields,
} from "./core/failures.ts";
export {
  type AccountHealth,
  accountHealth,
  BACKOFF_BASE_SECONDS,
  BACKOFF_MAX_SECONDS,
  BACKOFF_THRESHOLD,
  backoffSeconds,
  backoffUntil,
  isProbing,
  isUsable,
  usableAgainAt,
} from "./core/health.ts";
export { accountStatuses, type RoutingPolicy, routingPolicies } from "./core/types.ts";
export * from "./plugin-host/api.ts";
export { routingStrategies, type Settings } from "./settings/schema.ts";
