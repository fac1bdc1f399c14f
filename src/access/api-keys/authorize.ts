/**
 * The two API-key checks of a proxy request:
 * - {@link admitApiKey} at admission (before any body is read): who is calling — 401 or the key id;
 * - {@link authorizeProxyRequest} once the model is known: may this key use it, and is any of its
 *   limits already reached — 403 `model_not_allowed` or 429 `rate_limit_exceeded` with Retry-After.
 *
 * @module
 */

import type { Kysely } from "kysely";
import { GatewayError } from "../../core/errors.ts";
import type { RuntimeSettingsReader } from "../../runtime-settings/store.ts";
import type { Database } from "../../store/schema.ts";
import { getApiKeyAuthEnabled } from "../runtime-settings.ts";
import { API_KEY_PREFIX, presentedKey } from "./key.ts";
import { limitStates } from "./limits.ts";
import { type ApiKeyRecord, findByPresentedKey, getApiKey, touchLastUsed } from "./repository.ts";
import type { LimitReservations, ReservationRequest } from "./reservations.ts";
import type { KeyStateCache } from "./state-cache.ts";

const LAST_USED_EVERY_MS = 30_000;

/** Proxy paths that always need a key, whatever `apiKeyAuthEnabled` says (they answer about a key). */
export const keyOnlyPaths: readonly string[] = ["/v1/usage"];

/** Why a key cannot be used now, or null when it can. */
export function keyProblem(key: ApiKeyRecord, now: number): string | null {
  if (!key.isActive) return "This API key is deactivated";
  if (key.expiresAt !== null && key.expiresAt <= now) return "This API key has expired";
  return null;
}

/**
 * The record of a presented key, checked: at once while the key is cached and its last use was
 * written recently, else a promise (the store is read or written).
 */
function validKey(
  db: Kysely<Database>,
  presented: string,
  now: number,
  cache: KeyStateCache | undefined,
): ApiKeyRecord | Promise<ApiKeyRecord> {
  const known = cache?.presented(presented, now);
  if (known) return usableKey(db, presented, known, now, cache);
  return findByPresentedKey(db, presented).then((found) => {
    if (!found) throw new GatewayError("invalid_api_key", "Invalid API key");
    cache?.setPresented(presented, found, now);
    return usableKey(db, presented, found, now, cache);
  });
}

function usableKey(
  db: Kysely<Database>,
  presented: string,
  key: ApiKeyRecord,
  now: number,
  cache: KeyStateCache | undefined,
): ApiKeyRecord | Promise<ApiKeyRecord> {
  const problem = keyProblem(key, now);
  if (problem) throw new GatewayError("invalid_api_key", problem);
  // Written at most every 30 s per key, and only then: no write lock on the hot path otherwise.
  if (key.lastUsedAt === null || key.lastUsedAt < now - LAST_USED_EVERY_MS) {
    return touchLastUsed(db, key.id, now, LAST_USED_EVERY_MS).then(() => {
      cache?.touched(presented, now);
      return key;
    });
  }
  return key;
}

interface AdmitApiKey {
  readonly db: Kysely<Database>;
  readonly runtimeSettings: RuntimeSettingsReader;
  readonly headers: Headers;
  readonly path: string;
  /**
   * Whether the request comes from this machine (see `isLocalRequest`); asked only when no key is
   * required (with `apiKeyAuthEnabled` on, the usual case, the check is not worked out at all).
   */
  readonly local: () => boolean;
  readonly now: number;
  /** Remembers which record a presented key resolved to (see KeyStateCache). */
  readonly cache?: KeyStateCache;
}

/**
 * Admission of a proxy request. With `apiKeyAuthEnabled` on (or on a key-only path) a valid key is
 * required. With it off, only clients on this machine are served, keyless; a presented `sk-clb-` key
 * is still checked and attributed (so its limits apply), other bearer tokens are ignored. Remote
 * clients are refused while it is off: the gateway is never an open proxy by accident.
 *
 * The answer comes at once (not a promise) when the settings and the key are cached: the usual
 * keyed request is admitted without a promise or an async frame. A refusal is thrown (at once or
 * as the promise's rejection).
 *
 * @returns the id of the key that authenticated the request, or null (local, keyless).
 * @throws GatewayError `invalid_api_key` (401).
 */
export function admitApiKey(opts: AdmitApiKey): string | null | Promise<string | null> {
  const presented = presentedKey(opts.headers);
  if (keyOnlyPaths.includes(opts.path)) return keyIdOf(opts, presented, true);
  const settings = opts.runtimeSettings.cached?.();
  return settings
    ? keyIdOf(opts, presented, settings.apiKeyAuthEnabled)
    : getApiKeyAuthEnabled(opts.runtimeSettings).then((required) => keyIdOf(opts, presented, required));
}

function keyIdOf(
  opts: AdmitApiKey,
  presented: string | null,
  required: boolean,
): string | null | Promise<string | null> {
  const { db, local, now, cache } = opts;
  if (required) {
    if (!presented)
      throw new GatewayError(
        "invalid_api_key",
        "Missing API key: send it as 'Authorization: Bearer sk-clb-…' or in 'x-api-key'",
      );
    return idOf(validKey(db, presented, now, cache));
  }
  if (!local()) {
    throw new GatewayError(
      "invalid_api_key",
      "API key authentication is off, so only clients on this machine may use the proxy; an admin must enable apiKeyAuthEnabled to serve remote clients",
    );
  }
  if (presented?.startsWith(API_KEY_PREFIX)) return idOf(validKey(db, presented, now, cache));
  return null;
}

function idOf(key: ApiKeyRecord | Promise<ApiKeyRecord>): string | Promise<string> {
  return key instanceof Promise ? key.then((k) => k.id) : key.id;
}

/**
 * THE call the proxy makes once it knows the model (before choosing an account): does the key that
 * authenticated this request (`info.apiKeyId`) allow `model`, and is none of its limits
 * reached? Resolves to the key (or null for a keyless local request); throws otherwise.
 *
 * @throws GatewayError `invalid_api_key` (401; key deleted/deactivated/expired since admission),
 *   `model_not_allowed` (403), `rate_limit_exceeded` (429 with Retry-After and `resets_at`).
 */
export async function authorizeProxyRequest(opts: {
  readonly db: Kysely<Database>;
  readonly apiKeyId: string | null | undefined;
  readonly model: string | null;
  readonly now: number;
  /** Keeps the key's record and limit states between requests (see KeyStateCache). */
  readonly cache?: KeyStateCache;
  /**
   * Reserve the request's estimated usage against the key's limits (see reservations.ts); settled
   * when the request's log row is queued. Without it only "already reached" is checked.
   */
  readonly reserve?: { readonly reservations: LimitReservations; readonly request: ReservationRequest };
}): Promise<ApiKeyRecord | null> {
  const { db, apiKeyId, model, now, cache } = opts;
  if (!apiKeyId) return null;
  let state = cache?.get(apiKeyId, now);
  if (!state) {
    const fresh = await getApiKey(db, apiKeyId);
    if (!fresh) throw new GatewayError("invalid_api_key", "Invalid API key");
    state = { key: fresh, limits: await limitStates(db, fresh, now) };
    cache?.set(apiKeyId, state, now);
  }
  const key = state.key;
  const problem = keyProblem(key, now);
  if (problem) throw new GatewayError("invalid_api_key", problem);
  if (model !== null && key.allowedModels && key.allowedModels.length > 0) {
    const wanted = model.trim().toLowerCase();
    if (!key.allowedModels.some((m) => m.toLowerCase() === wanted)) {
      throw new GatewayError("model_not_allowed", `This API key may not use model '${model}'`, {
        param: "model",
      });
    }
  }
  const reached = state.limits.filter((s) => s.reached).sort((a, b) => b.resetsAt - a.resetsAt)[0];
  if (reached) {
    const seconds = Math.max(1, Math.ceil((reached.resetsAt - now) / 1000));
    const used = Number(reached.currentValue.toFixed(6));
    throw new GatewayError(
      "rate_limit_exceeded",
      `API key ${reached.limitWindow} ${reached.limitType} limit of ${reached.maxValue} reached (${used} used); usage resets at ${new Date(reached.resetsAt).toISOString()}`,
      { resets_at: Math.ceil(reached.resetsAt / 1000), resets_in_seconds: seconds },
      { "retry-after": String(seconds) },
    );
  }
  if (opts.reserve) await opts.reserve.reservations.hold(key, opts.reserve.request, now);
  return key;
}
