/**
 * Composes the gateway: the hook bus, the action applier, the plugin host with the built-in and
 * extra plugins, the Elysia app with request ids, admission, the error envelope, OpenAPI docs and
 * every feature's routes. Runtime-neutral: the result is a `fetch(Request) → Response`; the server
 * seam (`src/runtime/bun/serve.ts`) puts it on a socket.
 *
 * @module
 */

import { type AnyElysia, Elysia } from "elysia";
import { createAccessControl } from "../access/access-control.ts";
import { createAdmission } from "../access/admission.ts";
import { normalizeOrigin } from "../access/csrf.ts";
import { TokenCipher } from "../accounts/crypto.ts";
import { AccountRepository } from "../accounts/repository.ts";
import { SnapshotCache } from "../accounts/snapshot-cache.ts";
import { getSnapshot, listSnapshots } from "../accounts/snapshots.ts";
import { createCluster } from "../cluster/cluster.ts";
import { BodyGuard, type BodySlot, hasBody } from "../core/body-guard.ts";
import { type Clock, type Random, systemClock, systemRandom, type TimerHandle } from "../core/clock.ts";
import type { AppDeps } from "../core/deps.ts";
import { envelopeFor, errorResponse, GatewayError } from "../core/errors.ts";
import { ACCESS_MESSAGE, type Logger } from "../core/logging.ts";
import { withoutTrailingSlashes } from "../core/paths.ts";
import { chooseRequestId, newRequestInfo, type RequestInfo, requestInfo } from "../core/request-info.ts";
import { version } from "../core/version.ts";
import type { WsAccept } from "../core/websocket.ts";
import type { UiAssets } from "../dashboard/assets.ts";
import { AdminEvents, type EventTopic } from "../dashboard/events.ts";
import { GatewayMetrics } from "../metrics/metrics.ts";
import { OAuthFlows } from "../oauth/flows.ts";
import type { AccountLeases, GatewayServices, Plugin, Providers } from "../plugin-host/api.ts";
import { ActionApplier } from "../plugin-host/apply.ts";
import { CoreApplier } from "../plugin-host/apply-data.ts";
import { Dispatcher } from "../plugin-host/dispatch.ts";
import { HookBus } from "../plugin-host/hooks.ts";
import { PluginHost } from "../plugin-host/host.ts";
import { proxyContext } from "../proxy/context.ts";
import {
  HttpRequestContext,
  type ProxyGate,
  type ProxyRoute,
  proxyRoutes as pipelineRoutes,
  serveProxyRequest,
} from "../proxy/pipeline.ts";
import { RequestLogWriter } from "../request-logs/writer.ts";
import { Pruner } from "../retention/pruner.ts";
import { defaultsFrom, RuntimeSettingsStore } from "../runtime-settings/store.ts";
import type { Settings } from "../settings/schema.ts";
import { createStickyService, STICKY_SWEEP_INTERVAL_MS } from "../sticky/service.ts";
import { StickyStore } from "../sticky/store.ts";
import type { Store } from "../store/store.ts";
import { createTracer } from "../tracing/tracing.ts";
import { pathOf, renderError } from "./errors.ts";
import { normalizeOpenApi } from "./openapi.ts";
import { openApiDocument } from "./openapi-document.ts";
import { routeModules } from "./routes.ts";
import { type BodySchema, isJsonObject, NO_BODY, unknownField } from "./strict-body.ts";

export interface GatewayOptions {
  readonly settings: Readonly<Settings>;
  readonly store: Store;
  readonly log: Logger;
  /** Plugins in the order their setup runs: built-ins first, then extra ones. */
  readonly plugins: readonly { plugin: Plugin; source: string }[];
  /** Each plugin's checked settings (see `checkPlugins`); defaults when absent. */
  readonly pluginConfigs?: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Time and timers (a FakeClock in tests); the system clock by default. */
  readonly clock?: Clock;
  /** Randomness for selection (seeded in tests); the system source by default. */
  readonly random?: Random;
  /** The browser UI's files (dashboard, Swagger UI); without them `/` and `/docs` answer 404. */
  readonly ui?: UiAssets | null;
}

export interface Gateway extends AppDeps {
  readonly app: AnyElysia;
  /** Serves one request; `peerIp` is the socket peer as the server seam saw it. */
  fetch(request: Request, peerIp?: string | null): Promise<Response>;
  /**
   * The server seam's entry: {@link fetch}, except that a WebSocket upgrade a route accepted comes
   * back as its {@link WsAccept} (for the seam to perform) instead of the route's HTTP answer.
   */
  serve(request: Request, peerIp: string | null): Promise<Response | WsAccept>;
  /** Starts plugins' background work. */
  start(): Promise<void>;
  /** Ends long-lived admin streams (`/api/events`) so a graceful stop does not wait for them. */
  drain(): void;
  /** Stops plugins (reverse order). The caller closes the store after. */
  stop(): Promise<void>;
}

/**
 * The body schema of each admin write route (`POST /api/...` etc.), keyed `METHOD path`; a route
 * without one takes no fields ({@link NO_BODY}).
 */
function adminBodySchemas(app: AnyElysia): Map<string, BodySchema> {
  const out = new Map<string, BodySchema>();
  for (const r of app.routes as { method: string; path: string; hooks?: { body?: unknown } }[]) {
    if (!r.path.startsWith("/api/") || !["POST", "PUT", "PATCH", "DELETE"].includes(r.method)) continue;
    // Routes that read their body themselves (`parse: "none"`) never get here with a parsed body.
    out.set(`${r.method} ${r.path}`, (r.hooks?.body as BodySchema | undefined) ?? NO_BODY);
  }
  return out;
}

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const { settings, store, log } = opts;
  const time = opts.clock ?? systemClock;
  const random = opts.random ?? systemRandom;
  const clock = () => time.now();
  const bus = new HookBus(log.child({ component: "hooks" }));
  const applier = new ActionApplier(store.db, log.child({ component: "actions" }), clock);
  const runtimeSettings = new RuntimeSettingsStore(store.db, defaultsFrom(settings), clock);
  const sticky = new StickyStore(store.db);
  // One key (`<dataDir>/encryption.key`) seals every secret at rest: account tokens, TOTP secrets.
  const cipher = TokenCipher.forDataDir(settings.dataDir);
  const requestLogs = new RequestLogWriter(
    store.db,
    log.child({ component: "request-logs" }),
    settings.requestLogFlushMs,
    { ownerTtlMs: settings.responseOwnerTtlSeconds * 1000, sqlite: store.sqlite, timers: time },
  );
  const accounts = new AccountRepository(store.db, cipher, clock);
  const sqlite = store.sqlite;
  // SQLite: re-read only when the accounts or their usage windows changed (PostgreSQL: each second,
  // for other replicas' writes).
  const snapshotCache = new SnapshotCache(
    () => listSnapshots(store.db),
    undefined,
    sqlite && (() => sqlite.exclusive((s) => s.watchStamp("accounts"))),
  );
  // Replicas on one database: leadership, refresh claims, and each change that other replicas
  // cache is published to them (they drop their copy; see src/cluster/feed.ts).
  const cluster = createCluster({ store, clock: time, version, log: log.child({ component: "cluster" }) });
  const { feed } = cluster;
  applier.onApplied(() => {
    snapshotCache.invalidate();
    feed.publish("accounts");
  });
  accounts.onChange((kind) => {
    snapshotCache.invalidate();
    // A usage reading (after every proxied request that carried quota headers) reaches other
    // replicas through their 1 s snapshot refresh; announcing each would cost every replica a
    // reload per request.
    if (kind !== "usage") feed.publish("accounts");
  });
  feed.subscribe("accounts", () => {
    snapshotCache.invalidate();
    accounts.forgetCredentials();
  });
  runtimeSettings.onUpdated(() => feed.publish("settings"));
  feed.subscribe("settings", () => runtimeSettings.forget());
  const oauth = new OAuthFlows(settings, accounts, log.child({ component: "oauth" }), time);
  const access = createAccessControl({ settings, store, log, clock, timers: time, runtimeSettings, cipher });
  const bodyGuard = new BodyGuard({
    maxBytes: settings.maxBodyBytes,
    timeoutMs: settings.bodyTimeoutSeconds * 1000,
    maxPendingPerAddress: settings.maxUnauthenticatedPerAddress,
    // Body deadlines on the gateway's timers (a FakeClock's in tests).
    timers: time,
  });
  const allowedOrigins = new Set(
    settings.allowedOrigins.map((o) => normalizeOrigin(o)).filter((o): o is string => o !== null),
  );
  // A key's usage changed once its request-log rows are in: its cached limit states are stale.
  requestLogs.onWritten((rows) => {
    for (const keyId of new Set(rows.map((r) => r.api_key_id ?? null))) access.keyStates.invalidate(keyId);
    // The hour buckets count these rows now: their reservations go.
    void access.reservations.rowsWritten(rows);
  });
  requestLogs.onAdded((row) => access.reservations.rowAdded(row));
  const leases = () => {
    try {
      return host.provider("leases");
    } catch {
      return null;
    }
  };
  const metrics = settings.metricsEnabled
    ? new GatewayMetrics({
        accounts: () => snapshotCache.list(),
        inFlight: (id) => leases()?.inFlight(id) ?? 0,
        queued: (id) => leases()?.queued?.(id) ?? 0,
        requestLogQueue: () => requestLogs.pending,
        requestLogDropped: () => requestLogs.dropped,
        now: clock,
      })
    : null;
  if (metrics)
    applier.onApplied((results) => {
      for (const r of results) metrics.applied.inc([r.action.type, r.status]);
    });
  const stickyService = createStickyService(sticky, runtimeSettings, clock, async (id) => {
    const owner = await requestLogs.responseOwner(id);
    if (owner !== null || store.location.kind !== "postgres") return owner;
    // Replicas: the response may have been served by another replica whose log row is still in
    // its write queue (written within one flush interval). Look again once it must be written.
    await new Promise<void>((resolve) => time.setTimeout(resolve, settings.requestLogFlushMs + 100));
    return requestLogs.responseOwner(id);
  });
  // Cached bindings follow every change (src/sticky/cache.ts): a binding bound, moved or removed
  // here is published; one changed elsewhere is dropped; a TTL change drops them all, and so does an
  // account's deletion (its bindings go with it, so the sticky table changed: published as such).
  // Other account changes (tokens, status, usage) leave bindings as they are.
  sticky.onChanged((key) => feed.publish("sticky", key));
  feed.subscribe("sticky", (key) => stickyService.forgetCached(key));
  runtimeSettings.onUpdated(() => stickyService.forgetCached(null));
  feed.subscribe("settings", () => stickyService.forgetCached(null));
  accounts.onChange((kind) => {
    if (kind === "removed") sticky.invalidate();
  });
  // The one place plugin decisions change the store: account actions through the state table,
  // data actions through these ports, each with its compare-and-set guard.
  const core = new CoreApplier({
    accounts: applier,
    data: {
      stickyBind: (a, now) =>
        stickyService.bind(a.key, a.kind, a.accountId, { now, expected: a.expectedAccountId }),
      stickyTouch: (a, now) => stickyService.touch(a.key, { now, accountId: a.accountId }),
      stickyTouchSkips: (a, now) => stickyService.touchSkips(a.key, { now, accountId: a.accountId }),
      stickyForget: (a) => stickyService.forget(a.key, { expected: a.expectedAccountId }),
      saveTokens: async (a) => {
        const saved = await accounts.saveTokens(
          a.accountId,
          { accessToken: a.accessToken, refreshToken: a.refreshToken, idToken: a.idToken },
          { replacing: a.replacing },
        );
        // Token saves come from refreshes (logins and imports use the repository directly).
        metrics?.refreshes.inc([String(saved)]);
        return saved;
      },
      recordUsage: async (a) => {
        if (!(await getSnapshot(store.db, a.accountId))) return false;
        await accounts.recordUsage(a.accountId, a);
        snapshotCache.invalidate();
        return true;
      },
    },
    log: log.child({ component: "actions" }),
    clock,
    credentialsProvider: () => host.providerOf("credentials"),
  });
  const dispatcher = new Dispatcher(
    bus,
    core,
    metrics
      ? (hook, outcome) => {
          metrics.actions(hook, outcome.actions);
          if (hook === "refresh.failed") metrics.refreshes.inc(["failed"]);
        }
      : undefined,
  );
  access.keyStates.onInvalidate((keyId) => feed.publish("api_keys", keyId));
  feed.subscribe("api_keys", (keyId) => access.keyStates.forget(keyId ?? undefined));
  access.firewall.onChanged(() => feed.publish("firewall"));
  feed.subscribe("firewall", () => access.firewall.forget());
  // Live admin events (`/api/events`): new request-log rows, account changes, admin writes.
  const events = new AdminEvents(time);
  requestLogs.onWritten((rows) =>
    events.publish(
      "requests",
      rows.map((r) => r.request_id),
    ),
  );
  applier.onApplied(() => events.publish("accounts"));
  accounts.onChange(() => events.publish("accounts"));
  let globalLeases: AccountLeases | null = null;
  const services: GatewayServices = {
    // Always a promise for plugins (the core's own request path takes `dispatcher.fire`'s outcome at once).
    fire: async (hook, event, o) => dispatcher.fire(hook, event, o),
    apply: (actions, o) =>
      core.apply(actions, { source: o.source, requestId: o.requestId ?? null, audit: o.audit }),
    accounts: {
      list: () => snapshotCache.list(),
      get: (id) => getSnapshot(store.db, id),
      credentials: (id, o) => accounts.credentials(id, o),
    },
    now: clock,
    random: () => random.next(),
    timers: time,
    sticky: {
      lookup: stickyService.lookup,
      cached: stickyService.cached,
      responseOwner: stickyService.responseOwner,
    },
    runtimeSettings,
    firewall: { allowlist: () => access.firewall.allowlist(), cached: () => access.firewall.cached() },
    provider: (key) => {
      // With replicas on PostgreSQL the stream cap holds across them (src/cluster/stream-leases.ts).
      if (key === "leases" && cluster.streams) {
        globalLeases ??= cluster.streams.wrap(
          host.provider("leases"),
          () => settings.accountMaxStreams,
          () => settings.accountQueueWaitMs,
        );
        return globalLeases as Providers[typeof key];
      }
      return host.provider(key);
    },
    cluster: {
      isLeader: () => cluster.isLeader(),
      claimRefresh: (accountId, refreshToken, ttlMs) =>
        cluster.refreshClaims.claim(accountId, refreshToken, ttlMs),
    },
  };
  /** What one plugin gets: its decisions attributed to it, tokens only for the credentials provider. */
  const servicesFor = (plugin: string): GatewayServices => ({
    ...services,
    apply: (actions, o) =>
      core.apply(actions, {
        source: o.source,
        requestId: o.requestId ?? null,
        plugins: actions.map(() => plugin),
      }),
    accounts: {
      ...services.accounts,
      credentials: (id, o) => {
        const provider = host.providerOf("credentials");
        if (provider !== plugin) {
          return Promise.reject(
            new Error(
              `plugin ${plugin} may not read decrypted tokens (the credentials provider is ${provider})`,
            ),
          );
        }
        return accounts.credentials(id, o);
      },
    },
  });
  const host = new PluginHost({
    bus,
    services,
    servicesFor,
    settings,
    configs: opts.pluginConfigs,
    logFor: (name) => log.child({ plugin: name }),
  });
  await host.setup(opts.plugins);

  // Core shutdown work, after the plugins stopped: the request-log writer flushes what is queued.
  const stops: (() => void | Promise<void>)[] = [() => requestLogs.stop()];
  // Old request logs, audit rows, usage buckets and expired sessions go in the background.
  const pruner = new Pruner(
    store.db,
    store.location.kind,
    time,
    {
      requestLogDays: settings.requestLogRetentionDays,
      auditDays: settings.auditRetentionDays,
      usageDays: settings.usageRetentionDays,
    },
    log.child({ component: "retention" }),
    { shouldRun: () => cluster.isLeader() },
  );
  stops.push(() => pruner.stop());
  // Spans batched for export go out last (after the request-log flush, which may finish requests).
  const tracing = await createTracer(settings, version, log.child({ component: "tracing" }));
  if (tracing) stops.push(() => tracing.shutdown());
  const deps: AppDeps = {
    settings,
    store,
    log,
    bus,
    applier,
    dispatcher,
    services,
    host,
    version,
    clock,
    time,
    random,
    runtimeSettings,
    sticky,
    accounts,
    snapshots: snapshotCache,
    oauth,
    onStop: (fn) => stops.push(fn),
    requestLogs,
    metrics,
    tracing,
    access,
    cluster,
    events,
    ui: opts.ui ?? null,
  };

  // Every request's admission: the framework's request hook runs it for the routes it dispatches,
  // the proxy pipeline as its first step.
  const admit = createAdmission({
    maxBodyBytes: settings.maxBodyBytes,
    allowedOrigins,
    access,
    bus,
    log,
    clock,
    onAdmitActions: metrics ? (actions) => metrics.actions("request.admit", actions) : undefined,
  });
  // The proxy's POST routes are served by its pipeline without the framework's dispatch and hooks:
  // matched here by method and path (a trailing slash allowed, as the framework allows it).
  const proxy = proxyContext(deps);
  const direct = new Map(pipelineRoutes.map((r) => [r.path, r]));
  const directRoute = (request: Request): ProxyRoute | undefined => {
    if (request.method !== "POST") return undefined;
    const path = pathOfUrl(request.url);
    return direct.get(withoutTrailingSlashes(path));
  };
  const gate: ProxyGate = {
    admit,
    readBody: (request, startedAt) => bodyGuard.readText(request, startedAt),
  };
  /**
   * A body-read slot for the request's client address, or the refusal to answer (too many
   * unauthenticated bodies in progress from that address), in the envelope of the request's path.
   */
  const takeBodySlot = (request: Request, peerIp: string | null, requestId: string): BodySlot | Response => {
    const address = access.clientIpOf(request, peerIp) ?? peerIp ?? "unknown";
    try {
      return bodyGuard.take(address);
    } catch (e) {
      log.warn({ requestId, peerIp, clientIp: address }, "too many unauthenticated requests in progress");
      return errorResponse(e as GatewayError, envelopeFor(pathOf(request)), requestId);
    }
  };
  /** One proxy POST, through the pipeline; its failures rendered as the framework would. */
  const serveDirect = async (route: ProxyRoute, request: Request, peerIp: string | null) => {
    const ctx = new HttpRequestContext(
      proxy,
      gate,
      route,
      request,
      peerIp,
      chooseRequestId(request.headers, deps.clock(), deps.random),
    );
    let slot: BodySlot | null = null;
    if (hasBody(request)) {
      const taken = takeBodySlot(request, peerIp, ctx.requestId);
      if (taken instanceof Response) return taken;
      slot = taken;
      ctx.releaseBodySlot = slot.release;
    }
    try {
      let response: Response;
      try {
        response = await serveProxyRequest(ctx);
      } catch (e) {
        response = renderError({ code: "UNKNOWN", error: e, request, requestId: ctx.requestId, log });
        // Refused before the pipeline wrote its own access line (a malformed body): the generic one.
        if (!ctx.accessLogged) {
          log.info(
            {
              requestId: ctx.requestId,
              method: request.method,
              path: pathOfUrl(request.url),
              status: response.status,
              ms: Math.round(performance.now() - ctx.startedAt),
            },
            ACCESS_MESSAGE,
          );
        }
      }
      return ctx.authenticated ? response : closingConnection(response);
    } finally {
      slot?.release();
    }
  };

  let bodySchemas: Map<string, BodySchema> | undefined;
  /**
   * The facts of the request being handed to the framework. Its dispatch (`app.handle`) takes only
   * the Request, and calls the request hook below synchronously, before its first await: `fetch`
   * sets this right before the call, the hook takes it into the request's typed context at once
   * (`info`), and `fetch` checks it was taken. Never holds anything across an await.
   */
  let handingOver: RequestInfo | null = null;
  let app: AnyElysia = new Elysia({ name: "codex-lb" })
    .use(requestInfo)
    .onRequest((c) => {
      // A request no gateway `fetch` handed over (an in-process `app.handle`): facts of its own.
      const info = handingOver ?? newRequestInfo(null, "");
      handingOver = null;
      c.info = info;
      c.set.headers["x-request-id"] = info.requestId;
      return admit(c.request, new URL(c.request.url), info);
    })
    // Every admin body schema is strict: Elysia would drop an unknown field silently (a typo would
    // be a 200 that changed nothing), so it is refused first, naming the field.
    .onTransform(function strictAdminBodies({ request, body, route }) {
      if (body === undefined) return;
      bodySchemas ??= adminBodySchemas(app);
      const schema = bodySchemas.get(`${request.method} ${route}`);
      if (!schema) return;
      // `null`, a number or an array where the route declares an object: nothing to change.
      if (schema !== NO_BODY && schema.type === "object" && !isJsonObject(body))
        throw new GatewayError("validation_error", "Invalid body: expected a JSON object");
      const unknown = unknownField(body, schema);
      if (unknown) {
        throw new GatewayError(
          "validation_error",
          `Invalid body field '${unknown.field}': unknown field (allowed: ${unknown.allowed.join(", ") || "none"})`,
          { param: unknown.field },
        );
      }
    })
    .onError(({ code, error, request, info }) =>
      renderError({ code, error, request, requestId: info.requestId, log }),
    )
    .onAfterResponse(({ request, set, info }) => {
      if (info.accessLogged) return;
      const url = new URL(request.url);
      if (url.pathname === "/health") return;
      const status = typeof set.status === "number" ? set.status : 200;
      if (request.method !== "GET" && status < 400) {
        const topic = adminTopicOf(url.pathname);
        if (topic) events.publish(topic);
        if (url.pathname.startsWith("/api/")) events.publish("audit");
      }
      log.info(
        {
          requestId: info.requestId,
          method: request.method,
          path: url.pathname,
          status: set.status ?? 200,
          ms: Math.round(performance.now() - info.startedAt),
        },
        ACCESS_MESSAGE,
      );
    })
    // The generated document, made a valid OpenAPI 3.1 one (src/app/openapi.ts) on its way out.
    .onAfterHandle({ as: "global" }, ({ request, response }) => {
      if (response && typeof response === "object" && !(response instanceof Response)) {
        if (new URL(request.url).pathname === "/docs/json")
          return normalizeOpenApi(structuredClone(response));
      }
    })
    .use(
      // The document's mapping code loads on the first request (see openapi-document.ts).
      openApiDocument("/docs/json", ["/docs", "/docs/json"], {
        info: {
          title: "codex-lb",
          version,
          description:
            "Account-pooling gateway for ChatGPT/Codex: admin API and OpenAI-compatible endpoints.",
        },
      }),
    );
  for (const mod of routeModules) app = app.use(mod(deps));
  for (const p of host.plugins) app = app.use(p.http);
  app = app.all("*", ({ request }) => {
    throw new GatewayError("not_found", `No route for ${request.method} ${new URL(request.url).pathname}`);
  });

  // Expired sticky bindings are ignored anyway; deleting them now and then keeps the table small.
  let sweepTimer: TimerHandle | undefined;
  let sweepStopped = false;
  const scheduleSweep = () => {
    if (sweepStopped) return;
    sweepTimer = time.setTimeout(() => {
      // Once-only work: the leader among replicas on one database does it.
      (cluster.isLeader() ? stickyService.sweep() : Promise.resolve())
        .catch((err: unknown) =>
          log.warn({ err: err instanceof Error ? err.message : String(err) }, "sticky sweep failed"),
        )
        .finally(scheduleSweep);
    }, STICKY_SWEEP_INTERVAL_MS);
  };

  // One request, as `fetch` (`upgrades` false) or as `serve` (true: an accepted upgrade comes back).
  async function answer(request: Request, peerIp: string | null, upgrades: false): Promise<Response>;
  async function answer(
    request: Request,
    peerIp: string | null,
    upgrades: true,
  ): Promise<Response | WsAccept>;
  async function answer(
    request: Request,
    peerIp: string | null,
    upgrades: boolean,
  ): Promise<Response | WsAccept> {
    // A Host that makes no URL (`a b`, `[::1`) would throw in every later step: one JSON 400 here.
    if (!URL.canParse(request.url)) {
      const requestId = chooseRequestId(request.headers, deps.clock(), deps.random);
      log.warn(
        { requestId, peerIp, host: (request.headers.get("host") ?? "").slice(0, 100) },
        "malformed request URL or Host header",
      );
      return closingConnection(
        errorResponse(
          new GatewayError("bad_request", "The request's Host header or URL is malformed"),
          "admin",
          requestId,
        ),
      );
    }
    const route = directRoute(request);
    if (route) return serveDirect(route, request, peerIp);
    // The request's facts, carried along from here in the framework's typed context (`info`).
    const info = newRequestInfo(peerIp, chooseRequestId(request.headers, deps.clock(), deps.random));
    let guarded = request;
    let slot: BodySlot | null = null;
    if (request.body !== null) {
      const taken = takeBodySlot(request, peerIp, info.requestId);
      if (taken instanceof Response) return taken;
      slot = taken;
      const held = slot;
      const body = bodyGuard.guard(request.body, () => held.release());
      // The framework reads the body from the request: a copy carrying the guarded body.
      guarded = new Request(request.url, {
        method: request.method,
        headers: request.headers,
        body: body.stream,
        signal: request.signal,
        duplex: "half",
      } as RequestInit);
      info.releaseBodySlot = held.release;
      info.readBody = () => body.text(request.headers);
    }
    try {
      handingOver = info;
      const handled = app.handle(guarded);
      if (handingOver !== null) {
        handingOver = null;
        handled.catch(() => undefined);
        throw new Error("the framework did not run the request hook at once: the request has no facts");
      }
      const response = await handled;
      // A route accepted the WebSocket upgrade (see src/core/websocket.ts): the seam performs it.
      if (upgrades && info.upgrade) return info.upgrade;
      // An unauthenticated caller keeps no idle connection open: the answer closes it (the
      // server keeps authenticated connections alive with no idle limit, for quiet streams).
      return info.authenticated ? response : closingConnection(response);
    } catch (e) {
      log.error(
        { err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) },
        "request failed outside the app's error handler",
      );
      return errorResponse(new GatewayError("server_error"), envelopeFor(pathOf(request)), info.requestId);
    } finally {
      slot?.release();
    }
  }

  return {
    ...deps,
    app,
    fetch: (request, peerIp = null) => answer(request, peerIp, false),
    serve: (request, peerIp) => answer(request, peerIp, true),
    drain: () => events.close(),
    start: async () => {
      // Leadership is known before the plugins start their background work.
      await cluster.start();
      await access.start();
      await host.start();
      pruner.start();
      scheduleSweep();
    },
    stop: async () => {
      // Access lines, metrics and spans of requests that just ended (see `afterAnswer`) first.
      proxy.flushDeferred();
      sweepStopped = true;
      time.clearTimeout(sweepTimer);
      events.close();
      await oauth.stop();
      await host.stop();
      await cluster.stop();
      for (const fn of [...stops].reverse()) {
        try {
          await fn();
        } catch (e) {
          log.error({ err: e instanceof Error ? e.message : String(e) }, "shutdown step failed");
        }
      }
    },
  };
}

/** The path of a request URL (`http://host/path?query` → `/path`) without parsing the whole URL. */
function pathOfUrl(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  let end = url.length;
  const q = url.indexOf("?", start);
  if (q >= 0) end = q;
  const h = url.indexOf("#", start);
  if (h >= 0 && h < end) end = h;
  return url.slice(start, end);
}

/** `response` with `Connection: close` (a copy when its headers are immutable). */
function closingConnection(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("connection", "close");
    return copy;
  }
}

/** The live-event topic an admin write under `path` changes (null: none the dashboard shows). */
function adminTopicOf(path: string): EventTopic | null {
  if (path.startsWith("/api/settings")) return "settings";
  if (path.startsWith("/api/auth/")) return "settings";
  if (path.startsWith("/api/api-keys")) return "api-keys";
  if (path.startsWith("/api/firewall")) return "firewall";
  if (path.startsWith("/api/accounts") || path.startsWith("/api/oauth")) return "accounts";
  return null;
}
