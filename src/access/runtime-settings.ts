/**
 * The proxy authentication policy, `apiKeyAuthEnabled`, as access control reads it. The value lives
 * in the one runtime-settings document (`src/runtime-settings/store.ts`, `GET/PUT /api/settings`,
 * default from `CODEX_LB_API_KEY_AUTH_ENABLED`); it is read on every proxy request from that
 * store's cache, and a change through it takes effect on the next request.
 *
 * @module
 */
import type { RuntimeSettingsReader } from "../runtime-settings/store.ts";

/** Whether every proxy request must carry a valid API key (off: loopback-only without a key). */
export async function getApiKeyAuthEnabled(settings: RuntimeSettingsReader): Promise<boolean> {
  return (await settings.get()).apiKeyAuthEnabled;
}
