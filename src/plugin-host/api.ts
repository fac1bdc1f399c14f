/**
 * The plugin types: the plugin shape, its context and the services it gets. Plugins do not import
 * this file: they import the public plugin API, `src/plugin-api.ts` (the package export
 * `codex-lb`), which re-exports everything here. The contract is described in `docs/plugins.md`.
 *
 * @module
 */
import type { TObject, Type } from "@sinclair/typebox";
import type { Elysia } from "elysia";
import type { Clock } from "../core/clock.ts";
import type { AccountCredentials, AccountSnapshot, EpochMs, UsageWindow } from "../core/types.ts";
import type { RuntimeSettingsReader } from "../runtime-settings/store.ts";
import type { Settings } from "../settings/schema.ts";
import type { StickyReader } from "../sticky/service.ts";
import type { Action } from "./actions.ts";
import type { ApplyContext, ApplyResult } from "./apply.ts";

/** An admin change's audit row (action, actor address, request id, details). */
export type ApplyAudit = NonNullable<ApplyContext["audit"]>;

import type { HookEvents, HookHandler, HookName, HookOutcome, UsageCredits } from "./hooks.ts";

export type {
  AccountCredentials,
  AccountSnapshot,
  AccountStatus,
  EpochMs,
  UsageWindow,
} from "../core/types.ts";
export type {
  RuntimeSettings,
  RuntimeSettingsDocument,
  RuntimeSettingsReader,
} from "../runtime-settings/store.ts";
export type { StickyReader } from "../sticky/service.ts";
export type { StickyBinding, StickyKind } from "../sticky/store.ts";
export type { AccountAction, Action, DataAction, RequestAction } from "./actions.ts";
export type * from "./hooks.ts";

/** Timers on the gateway's clock (see `src/core/clock.ts`). */
export type Timers = Pick<Clock, "setTimeout" | "clearTimeout">;
export type { TimerHandle } from "../core/clock.ts";

/** An OAuth token set as the auth server issues it. Never logged. */
export interface TokenSet {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly idToken: string;
}

/** One account's decrypted tokens and what the credentials provider needs around them. Never logged. */
export interface StoredCredentials extends TokenSet {
  readonly accountId: string;
  /** From the access token's `exp`, or null when it has none. */
  readonly accessTokenExpiresAt: EpochMs | null;
  readonly lastRefreshAt: EpochMs | null;
  /** The real ChatGPT account id (never a synthetic local id), sent as `chatgpt-account-id`. */
  readonly chatgptAccountId: string | null;
  readonly installationId: string;
}

/** What one `/wham/usage` answer says, ready to be stored as snapshots (`usage.record`). */
export interface UsageRecord {
  readonly primary: UsageWindow | null;
  readonly secondary: UsageWindow | null;
  readonly credits: UsageCredits | null;
}

/** The name of a service a plugin can provide (see {@link Providers}). */
export type ProviderKey = keyof Providers;

/**
 * A plugin: a unique name, what it declares (settings, services it provides and requires), and a
 * `setup` that registers hook handlers and routes. Declarations are checked at start-up, before any
 * plugin is set up: a bad setting, a missing provider or a service provided twice stops the
 * gateway with one line and exit code 2.
 */
export interface Plugin {
  /** Unique, lowercase, dot-namespaced (`codex-lb.firewall`, `acme.custom-codes`). */
  readonly name: string;
  readonly version?: string;
  /**
   * The plugin's settings: a TypeBox object schema, or a function of TypeBox's `Type` returning one
   * (so a plugin that only has `import type` can declare settings). Each field is read from
   * `CODEX_LB_PLUGIN_<NAME>_<FIELD>` (upper snake case of the plugin name and the field), converted
   * like the core settings (numbers, booleans, `csv: true` lists), defaults filled in; the result
   * is `ctx.config`.
   */
  readonly settings?: TObject | ((t: typeof Type) => TObject);
  /** Services this plugin registers with `ctx.provide` (each exactly once in the gateway). */
  readonly provides?: readonly ProviderKey[];
  /** Services this plugin needs another plugin to provide. */
  readonly requires?: readonly ProviderKey[];
  setup(ctx: PluginContext): void | Promise<void>;
}

/** Identity helper that gives a plugin object literal its type. */
export function definePlugin<P extends Plugin>(plugin: P): P {
  return plugin;
}

/** The structured logger a plugin gets (pino's methods: an object of fields first, then a message). */
export interface PluginLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface FireOutcome extends HookOutcome {
  /** What the action applier did with each account action. */
  readonly applied: readonly ApplyResult[];
}

/** Gives the proxy a fresh access token; provided by the auth-refresh plugin. */
export interface CredentialsProvider {
  /**
   * Returns credentials, refreshing first when the token is near expiry or `forceRefresh` is set
   * (at most one refresh per account in flight). Throws when the account cannot be used; the
   * refresh failure has then already been classified through `refresh.failed`.
   */
  get(
    accountId: string,
    options?: { forceRefresh?: boolean; requestId?: string | null },
  ): Promise<AccountCredentials>;
}

/**
 * Named services a plugin can provide to the core (Fastify's `decorate`, made explicit): one
 * provider per key, refused twice. Add a key here when the core grows a new extension point.
 */
export interface Providers {
  credentials: CredentialsProvider;
  leases: AccountLeases;
}

/** A held slot on an account; release it exactly once (the proxy does, also on client abort). */
export interface Lease {
  readonly accountId: string;
  release(): void;
}

/** How one request asks for a slot (see {@link AccountLeases.acquire}). */
export interface LeaseRequest {
  readonly requestId?: string | null;
  readonly signal?: AbortSignal;
  /**
   * Milliseconds this request already waited for slots on other accounts: the queue wait
   * (`CODEX_LB_ACCOUNT_QUEUE_WAIT_MS`) is one budget per request, so only the rest is waited here.
   */
  readonly waitedMs?: number;
  /**
   * The account is back from a backoff and has not served since: it takes one request at a time
   * (a probe) until one has succeeded, so a backoff's end does not send every waiting request at once.
   */
  readonly probe?: boolean;
}

/**
 * Per-account concurrency (provided by the balancing plugin). `acquire` waits briefly (the rest of
 * the request's queue budget) when the account is at its cap and throws a GatewayError
 * (429 `proxy_overloaded`) when it stays full.
 */
export interface AccountLeases {
  acquire(accountId: string, options?: LeaseRequest): Promise<Lease>;
  /** Streams in flight on an account now. */
  inFlight(accountId: string): number;
  /** Requests waiting for a slot on an account now (optional for other implementations). */
  queued?(accountId: string): number;
}

/** Read access to the gateway and the way to raise hooks. Plugins change the store only by actions. */
export interface GatewayServices {
  /** Runs a hook's handlers and applies the store-changing actions they return. */
  fire<H extends HookName>(
    hook: H,
    event: HookEvents[H],
    options?: { requestId?: string | null },
  ): Promise<FireOutcome>;
  /**
   * Applies actions decided outside a hook (a plugin's background work or route, the admin
   * surface): account actions, `sticky.*`, `tokens.save` (credentials provider only),
   * `usage.record`. Each gets a result (`applied`, `stale`, `refused`, ...); nothing throws.
   */
  apply(
    actions: readonly Action[],
    options: {
      source: string;
      requestId?: string | null;
      /** Core only (admin routes): the audit row written in the same transaction as the change. */
      audit?: ApplyAudit;
    },
  ): Promise<readonly ApplyResult[]>;
  readonly accounts: {
    list(): Promise<readonly AccountSnapshot[]>;
    get(id: string): Promise<AccountSnapshot | null>;
    /**
     * Decrypted tokens of one account; null when unknown. Cached; `fresh` reads the store (another
     * replica may have refreshed them). Only for the plugin that provides `credentials`: any other
     * plugin gets an error.
     */
    credentials(id: string, options?: { fresh?: boolean }): Promise<StoredCredentials | null>;
  };
  now(): EpochMs;
  /** Uniform random in [0, 1) from the gateway's random source (seeded in tests). */
  random(): number;
  /**
   * Timers on the gateway's clock. Background work schedules with these (never the global
   * `setTimeout`), so a test moves a fake clock forward instead of sleeping.
   */
  readonly timers: Timers;
  /**
   * Sticky session bindings (affinity key → account) and `previous_response_id` owners, read-only:
   * bind, touch and forget are actions (`sticky.bind`, `sticky.touch`, `sticky.forget`).
   */
  readonly sticky: StickyReader;
  /** The runtime settings (`/api/settings`): routing strategy, sticky TTL; env values by default. */
  readonly runtimeSettings: RuntimeSettingsReader;
  /** Read-only view of the firewall allowlist (changed only through `/api/firewall`). */
  readonly firewall: {
    /**
     * Normalised addresses and CIDR ranges; empty = allow every client. Cached: the same array
     * object is returned until the list changes, so callers may memoise work per array.
     */
    allowlist(): Promise<readonly string[]>;
    /**
     * What `allowlist()` would answer from its cache, or null when it must read the store: a
     * handler that decides at once uses it and calls `allowlist()` only on null.
     */
    cached?(): readonly string[] | null;
  };
  /** The provider registered under `key`; throws when no plugin provides it. */
  provider<K extends keyof Providers>(key: K): Providers[K];
  /** Several gateways on one database (a single gateway is always the leader). */
  readonly cluster: ClusterService;
}

/** A failed token refresh as the replica that sent it recorded it (see {@link ClusterService}). */
export interface RefreshFailureRecord {
  readonly code: string;
  readonly message: string;
  /** The failure took the account out (it needs a new login). */
  readonly dead: boolean;
}

/** The outcome of {@link ClusterService.claimRefresh}. */
export type RefreshClaim =
  | {
      readonly status: "claimed";
      /** Ends the claim: success (no failure), or a failure others report until `reuseMs` passed. */
      done(failure?: RefreshFailureRecord | null, reuseMs?: number): Promise<void>;
    }
  /** Another replica (or flight) is refreshing this token now: wait, then read the new tokens. */
  | { readonly status: "busy" }
  /** This token's refresh failed just now elsewhere: report that instead of re-sending the token. */
  | { readonly status: "failed"; readonly failure: RefreshFailureRecord };

export interface ClusterService {
  /** True on the one replica that runs once-only background work (refresh pass, usage polling). */
  isLeader(): boolean;
  /**
   * Claims the one refresh of this account's refresh token across every replica, for `ttlMs`
   * (it lapses if the claimer dies). Refresh tokens are single-use: never send one unclaimed.
   */
  claimRefresh(accountId: string, refreshToken: string, ttlMs: number): Promise<RefreshClaim>;
}

export interface PluginContext {
  readonly name: string;
  /** The gateway's settings (read-only). */
  readonly settings: Readonly<Settings>;
  /** This plugin's own settings, as declared by `Plugin.settings` (frozen; `{}` when none). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly log: PluginLogger;
  /** Registers a handler; lower `order` runs first (built-ins use 0). Only during `setup`. */
  on<H extends HookName>(hook: H, handler: HookHandler<H>, options?: { order?: number }): void;
  /** This plugin's own Elysia instance; its routes and guards are mounted on the gateway. */
  readonly http: Elysia;
  /** Runs after the store is ready and before the gateway listens (start background work here). */
  onStart(fn: () => void | Promise<void>): void;
  /** Runs on shutdown, in reverse plugin order (stop timers, flush). */
  onStop(fn: () => void | Promise<void>): void;
  readonly services: GatewayServices;
  /** Registers this plugin as the provider of a named service (only during `setup`). */
  provide<K extends keyof Providers>(key: K, impl: Providers[K]): void;
}
