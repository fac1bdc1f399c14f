/**
 * What other areas use from access control, in one import:
 * - the proxy: {@link authorizeProxyRequest} once the model is known (the key itself was checked at
 *   admission; its id is `info.apiKeyId`, the client address `info.clientIp`),
 *   and {@link costUsd} to fill `request_logs.cost_usd`;
 * - admin routes of every area: {@link auditContext} for the audit row each change writes in its
 *   own transaction (`src/store/audit.ts`);
 * - {@link getApiKeyAuthEnabled}: the proxy authentication policy (changed only through
 *   `PUT /api/settings`, or its narrowed form `PUT /api/settings/access`).
 *
 * @module
 */

export { type AuditEntry, audit, auditContext } from "../store/audit.ts";
export type { AccessControl } from "./access-control.ts";
export { authorizeProxyRequest } from "./api-keys/authorize.ts";
export { costUsd, priceOf, pricingTable } from "./api-keys/pricing.ts";
export type { ApiKeyRecord } from "./api-keys/repository.ts";
export { getApiKeyAuthEnabled } from "./runtime-settings.ts";
