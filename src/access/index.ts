/**
 * What other areas use from access control, in one import:
 * - the proxy: {@link authorizeProxyRequest} once the model is known (the key itself was checked at
 *   admission; its id is `infoOf(request).apiKeyId`, the client address `infoOf(request).clientIp`),
 *   and {@link costUsd} to fill `request_logs.cost_usd`;
 * - admin routes of every area: {@link audit} for each change;
 * - a settings API: {@link getApiKeyAuthEnabled} / {@link setApiKeyAuthEnabled} (settings key
 *   {@link API_KEY_AUTH_ENABLED}, JSON boolean).
 *
 * @module
 */
export type { AccessControl } from "./access-control.ts";
export { authorizeProxyRequest } from "./api-keys/authorize.ts";
export { costUsd, priceOf, pricingTable } from "./api-keys/pricing.ts";
export type { ApiKeyRecord } from "./api-keys/repository.ts";
export { type AuditEntry, audit, auditContext } from "./audit.ts";
export { getApiKeyAuthEnabled, setApiKeyAuthEnabled } from "./runtime-settings.ts";
