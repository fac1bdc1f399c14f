/**
 * Access control as one object the app holds: client address resolution, locality, the admission
 * step for proxy requests (API key) and admin requests (session guard), and the stores the routes
 * use. `createGateway` builds it once; routes reach it as `deps.access`.
 *
 * @module
 */

import { StoreAttemptLimiter } from "../cluster/attempts.ts";
import { type Cidr, inRanges } from "../core/address.ts";
import type { Clock } from "../core/clock.ts";
import { GatewayError } from "../core/errors.ts";
import type { Logger } from "../core/logging.ts";
import { withoutTrailingSlashes } from "../core/paths.ts";
import type { Surface } from "../core/surface.ts";
import { parseTrustedProxies, resolveClientIp } from "../firewall/forwarded.ts";
import { FirewallStore } from "../firewall/store.ts";
import type { RuntimeSettingsReader } from "../runtime-settings/store.ts";
import type { Settings } from "../settings/schema.ts";
import type { Store } from "../store/store.ts";
import { AttemptLimiter } from "./admin-auth/attempts.ts";
import { adminGuard } from "./admin-auth/guard.ts";
import type { SecretCipher } from "./admin-auth/service.ts";
import { AdminAuth } from "./admin-auth/service.ts";
import { SessionStore } from "./admin-auth/sessions.ts";
import { admitApiKey } from "./api-keys/authorize.ts";
import { LimitReservations, pruneReservations } from "./api-keys/reservations.ts";
import { KeyStateCache } from "./api-keys/state-cache.ts";
import { isLocalRequest } from "./locality.ts";

export interface AccessControl {
  readonly trustedProxies: readonly Cidr[];
  readonly firewall: FirewallStore;
  readonly admin: AdminAuth;
  /** API keys' records and limit states between requests (dropped on usage writes and key edits). */
  readonly keyStates: KeyStateCache;
  /** API-key limit reservations: held before forwarding, settled by the request's log row. */
  readonly reservations: LimitReservations;
  /** The client address of a request (see `resolveClientIp`). */
  clientIpOf(request: Request, peerIp: string | null): string | null;
  /**
   * Whether the request comes from this machine; `peerIp` is the socket peer (a route has it in its
   * request's facts, `info.peerIp`).
   */
  isLocal(request: Request, peerIp: string | null, url?: URL): boolean;
  /** Whether the client used https: the URL's scheme, or X-Forwarded-Proto from a trusted proxy. */
  isHttps(request: Request, peerIp: string | null): boolean;
  /**
   * Admission after the `request.admit` hook: API key on the proxy surface (sets `who.apiKeyId`),
   * the admin guard on the admin surface. Null = go on. At once (not a promise) when the proxy
   * request's key was cached.
   */
  admit(
    request: Request,
    surface: Surface,
    url: URL,
    who: { readonly peerIp: string | null; apiKeyId?: string | null },
  ): GatewayError | null | Promise<GatewayError | null>;
  /** Start-up work: prints a bootstrap token while no admin password exists. */
  start(): Promise<void>;
}

/** A refusal to answer with; anything else is a failure and goes on up. */
function refusal(e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  throw e;
}

export function createAccessControl(opts: {
  readonly settings: Readonly<Settings>;
  readonly store: Store;
  readonly log: Logger;
  readonly clock: () => number;
  /** The gateway's timers (the bound on a settle's wait runs on them). */
  readonly timers: Pick<Clock, "now" | "setTimeout">;
  readonly runtimeSettings: RuntimeSettingsReader;
  /** Seals the TOTP secrets at rest. */
  readonly cipher: SecretCipher;
}): AccessControl {
  const { settings, store, log, clock, timers, runtimeSettings, cipher } = opts;
  let trustedProxies: Cidr[];
  try {
    trustedProxies = parseTrustedProxies(settings.trustedProxies);
  } catch (e) {
    throw new Error(`invalid setting CODEX_LB_TRUSTED_PROXIES: ${e instanceof Error ? e.message : e}`);
  }
  const sessions = new SessionStore(store.db, {
    idleMs: settings.adminSessionIdleSeconds * 1000,
    maxMs: settings.adminSessionMaxSeconds * 1000,
  });
  const admin = new AdminAuth(
    store.db,
    sessions,
    // Replicas on one PostgreSQL database share the attempt budget of an address.
    store.location.kind === "postgres" ? new StoreAttemptLimiter(store.db) : new AttemptLimiter(),
    log.child({ component: "admin-auth" }),
    clock,
    cipher,
  );
  const isLocal = (request: Request, peerIp: string | null, url?: URL) => {
    return isLocalRequest({
      peerIp,
      headers: request.headers,
      url: url ?? new URL(request.url),
      trustedProxies,
    });
  };
  const keyStates = new KeyStateCache();
  const reservations = new LimitReservations(
    store.db,
    log.child({ component: "api-key-limits" }),
    undefined,
    store.sqlite,
    { ms: settings.settleWaitMs, clock: timers },
  );
  return {
    trustedProxies,
    reservations,
    firewall: new FirewallStore(store.db),
    admin,
    keyStates,
    clientIpOf: (request, peerIp) =>
      resolveClientIp(peerIp, request.headers, trustedProxies, settings.forwardedHeader),
    isLocal,
    isHttps(request, peerIp) {
      if (request.url.startsWith("https:")) return true;
      if (!inRanges(trustedProxies, peerIp)) return false;
      const proto = request.headers.get("x-forwarded-proto")?.split(",")[0]?.trim().toLowerCase();
      return proto === "https";
    },
    admit(request, surface, url, who) {
      try {
        if (surface === "proxy") {
          const keyId = admitApiKey({
            db: store.db,
            runtimeSettings,
            headers: request.headers,
            path: withoutTrailingSlashes(url.pathname),
            // Only asked when no key is required: no locality check per keyed request.
            local: () => isLocal(request, who.peerIp, url),
            now: clock(),
            cache: keyStates,
          });
          // Taken at once when the key was cached (no promise, see admitApiKey).
          if (!(keyId instanceof Promise)) {
            who.apiKeyId = keyId;
            return null;
          }
          return keyId.then((id) => {
            who.apiKeyId = id;
            return null;
          }, refusal);
        }
        if (surface === "admin")
          return adminGuard(admin, request, url.pathname, isLocal(request, who.peerIp, url), clock()).catch(
            refusal,
          );
        return null;
      } catch (e) {
        return refusal(e);
      }
    },
    async start() {
      await admin.issueBootstrapToken();
      await pruneReservations(store.db, clock());
    },
  };
}
