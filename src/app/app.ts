/**
 * Composes the gateway: the hook bus, the action applier, the plugin host with the built-in and
 * extra plugins, the Elysia app with request ids, admission, the error envelope, OpenAPI docs and
 * every feature's routes. Runtime-neutral: the result is a `fetch(Request) → Response`; the server
 * seam (`src/runtime/bun/serve.ts`) puts it on a socket.
 *
 * @module
 */

import { swagger } from "@elysiajs/swagger";
import { type AnyElysia, Elysia } from "elysia";
import { createAccessControl } from "../access/access-control.ts";
import { contentTypeRefusal, crossOriginRefusal, normalizeOrigin } from "../access/csrf.ts";
import { TokenCipher } from "../accounts/crypto.ts";
import { AccountRepository } from "../accounts/repository.ts";
import { SnapshotCache } from "../accounts/snapshot-cache.ts";
import { getSnapshot, listSnapshots } from "../accounts/snapshots.ts";
import { createCluster } from "../cluster/cluster.ts";
import { type Clock, type Random, systemClock, systemRandom } from "../core/clock.ts";
import { envelopeFor, errorResponse, GatewayError, rejectionError } from "../core/errors.ts";
import { OAuthFlows } from "../oauth/flows.ts";
import type { GatewayServices, Plugin } from "../plugin-host/api.ts";
import { ActionApplier } from "../plugin-host/apply.ts";
import { Dispatcher } from "../plugin-host/dispatch.ts";
import { HookBus } from "../plugin-host/hooks.ts";
import { PluginHost } from "../plugin-host/host.ts";
import { RequestLogWriter } from "../request-logs/writer.ts";
import { defaultsFrom, RuntimeSettingsStore } from "../runtime-settings/store.ts";
import type { Settings } from "../settings/schema.ts";
import { createStickyService } from "../sticky/service.ts";
import { StickyStore } from "../sticky/store.ts";
import type { Store } from "../store/store.ts";
import type { AppDeps } from "./deps.ts";
import { renderError } from "./errors.ts";
import type { Logger } from "./logging.ts";
import { attachPeer, chooseRequestId, infoOf } from "./request-info.ts";
import { routeModules } from "./routes.ts";
import { surfaceOf } from "./surface.ts";
import { version } from "./version.ts";

export interface GatewayOptions {
  readonly settings: Readonly<Settings>;
  readonly store: Store;
  readonly log: Logger;
  /** Plugins in the order their setup runs: built-ins first, then extra ones. */
  readonly plugins: readonly { plugin: Plugin; source: string }[];
  /** Time and timers (a FakeClock in tests); the system clock by default. */
  readonly clock?: Clock;
  /** Randomness for selection (seeded in tests); the system source by default. */
  readonly random?: Random;
}

export interface Gateway extends AppDeps {
  readonly app: AnyElysia;
  /** Serves one request; `peerIp` is the socket peer as the server seam saw it. */
  fetch(request: Request, peerIp?: string | null): Promise<Response>;
  /** Starts plugins' background work. */
  start(): Promise<void>;
  /** Stops plugins (reverse order). The caller closes the store after. */
  stop(): Promise<void>;
}

export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const { settings, store, log } = opts;
  const time = opts.clock ?? systemClock;
  const random = opts.random ?? systemRandom;
  const clock = () => time.now();
  const bus = new HookBus(log.child({ component: "hooks" }));
  const applier = new ActionApplier(store.db, log.child({ component: "actions" }), clock);
  const dispatcher = new Dispatcher(bus, applier);
  const runtimeSettings = new RuntimeSettingsStore(store.db, defaultsFrom(settings), clock);
  const sticky = new StickyStore(store.db);
  // One key (`<dataDir>/encryption.key`) seals every secret at rest: account tokens, TOTP secrets.
  const cipher = TokenCipher.forDataDir(settings.dataDir);
  const requestLogs = new RequestLogWriter(
    store.db,
    log.child({ component: "request-logs" }),
    settings.requestLogFlushMs,
    { ownerTtlMs: settings.responseOwnerTtlSeconds * 1000 },
  );
  const accounts = new AccountRepository(store.db, cipher, clock);
  const snapshotCache = new SnapshotCache(() => listSnapshots(store.db));
  // Replicas on one database: leadership, refresh claims, and each change that other replicas
  // cache is published to them (they drop their copy; see src/cluster/feed.ts).
  const cluster = createCluster({ store, clock: time, version, log: log.child({ component: "cluster" }) });
  const { feed } = cluster;
  applier.onApplied(() => {
    snapshotCache.invalidate();
    feed.publish("accounts");
  });
  accounts.onChange(() => {
    snapshotCache.invalidate();
    feed.publish("accounts");
  });
  feed.subscribe("accounts", () => {
    snapshotCache.invalidate();
    accounts.forgetCredentials();
  });
  runtimeSettings.onUpdated(() => feed.publish("settings"));
  feed.subscribe("settings", () => runtimeSettings.forget());
  const oauth = new OAuthFlows(settings, accounts, log.child({ component: "oauth" }), clock);
  const access = createAccessControl({ settings, store, log, clock, runtimeSettings, cipher });
  const allowedOrigins = new Set(
    settings.allowedOrigins.map((o) => normalizeOrigin(o)).filter((o): o is string => o !== null),
  );
  // A key's usage changed once its request-log rows are in: its cached limit states are stale.
  requestLogs.onWritten((rows) => {
    for (const keyId of new Set(rows.map((r) => r.api_key_id ?? null))) access.keyStates.invalidate(keyId);
  });
  access.keyStates.onInvalidate((keyId) => feed.publish("api_keys", keyId));
  feed.subscribe("api_keys", (keyId) => access.keyStates.forget(keyId ?? undefined));
  access.firewall.onChanged(() => feed.publish("firewall"));
  feed.subscribe("firewall", () => access.firewall.forget());
  const services: GatewayServices = {
    fire: (hook, event, o) => dispatcher.fire(hook, event, o),
    apply: (actions, o) => applier.apply(actions, { source: o.source, requestId: o.requestId ?? null }),
    accounts: {
      list: () => snapshotCache.list(),
      get: (id) => getSnapshot(store.db, id),
      credentials: (id, o) => accounts.credentials(id, o),
      saveTokens: (id, tokens, o) => accounts.saveTokens(id, tokens, o),
    },
    usage: { record: (id, usage) => accounts.recordUsage(id, usage) },
    now: clock,
    random: () => random.next(),
    timers: time,
    sticky: createStickyService(sticky, runtimeSettings, clock, (id) => requestLogs.responseOwner(id)),
    runtimeSettings,
    firewall: { allowlist: () => access.firewall.allowlist() },
    provider: (key) => host.provider(key),
    cluster: {
      isLeader: () => cluster.isLeader(),
      claimRefresh: (accountId, refreshToken, ttlMs) =>
        cluster.refreshClaims.claim(accountId, refreshToken, ttlMs),
    },
  };
  const host = new PluginHost({ bus, services, settings, logFor: (name) => log.child({ plugin: name }) });
  await host.setup(opts.plugins);

  // Core shutdown work, after the plugins stopped: the request-log writer flushes what is queued.
  const stops: (() => void | Promise<void>)[] = [() => requestLogs.stop()];
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
    oauth,
    onStop: (fn) => stops.push(fn),
    requestLogs,
    access,
    cluster,
  };

  let app: AnyElysia = new Elysia({ name: "codex-lb" })
    .onRequest(async ({ request, set }) => {
      const info = infoOf(request);
      info.requestId = chooseRequestId(request.headers);
      set.headers["x-request-id"] = info.requestId;
      const url = new URL(request.url);
      const envelope = envelopeFor(url.pathname);
      const declared = Number(request.headers.get("content-length") ?? "0");
      if (declared > settings.maxBodyBytes) {
        return errorResponse(new GatewayError("payload_too_large"), envelope, info.requestId);
      }
      const surface = surfaceOf(url.pathname);
      const shapeRefusal =
        crossOriginRefusal(request, url, { allowedOrigins, httpsByProxy: access.isHttps(request) }) ??
        contentTypeRefusal(request, surface, url.pathname);
      if (shapeRefusal) {
        log.info(
          {
            requestId: info.requestId,
            method: request.method,
            path: url.pathname,
            peerIp: info.peerIp,
            origin: request.headers.get("origin")?.slice(0, 200) ?? null,
            code: shapeRefusal.code,
          },
          "request refused before admission",
        );
        return errorResponse(shapeRefusal, envelope, info.requestId);
      }
      info.clientIp = access.clientIpOf(request, info.peerIp);
      if (surface === "public" && url.pathname.startsWith("/health")) return;
      const outcome = await bus.run("request.admit", {
        requestId: info.requestId,
        method: request.method,
        path: url.pathname,
        headers: request.headers,
        peerIp: info.peerIp,
        clientIp: info.clientIp,
        surface,
        now: clock(),
      });
      const reject = outcome.actions.find((a) => a.type === "request.reject");
      if (reject && reject.type === "request.reject") {
        log.info(
          {
            requestId: info.requestId,
            path: url.pathname,
            peerIp: info.peerIp,
            clientIp: info.clientIp,
            code: reject.code,
          },
          "request refused at admission",
        );
        return errorResponse(rejectionError(reject), envelope, info.requestId);
      }
      if (outcome.failed) {
        return errorResponse(
          new GatewayError("server_error", "Request admission failed"),
          envelope,
          info.requestId,
        );
      }
      const refused = await access.admit(request, surface, url);
      if (refused) {
        log.info(
          {
            requestId: info.requestId,
            path: url.pathname,
            peerIp: info.peerIp,
            clientIp: info.clientIp,
            code: refused.code,
          },
          "request refused by access control",
        );
        return errorResponse(refused, envelope, info.requestId);
      }
    })
    .onError(({ code, error, request }) =>
      renderError({ code, error, request, requestId: infoOf(request).requestId, log }),
    )
    .onAfterResponse(({ request, set }) => {
      const info = infoOf(request);
      if (info.accessLogged) return;
      const url = new URL(request.url);
      if (url.pathname === "/health") return;
      log.info(
        {
          requestId: info.requestId,
          method: request.method,
          path: url.pathname,
          status: set.status ?? 200,
          ms: Math.round(performance.now() - info.startedAt),
        },
        "request",
      );
    })
    .use(
      swagger({
        path: "/docs",
        specPath: "/docs/json",
        provider: "swagger-ui",
        exclude: ["/docs", "/docs/json"],
        documentation: {
          info: {
            title: "codex-lb",
            version,
            description:
              "Account-pooling gateway for ChatGPT/Codex: admin API and OpenAI-compatible endpoints.",
          },
        },
      }),
    );
  for (const mod of routeModules) app = app.use(mod(deps));
  for (const p of host.plugins) app = app.use(p.http);
  app = app.all("*", ({ request }) => {
    throw new GatewayError("not_found", `No route for ${request.method} ${new URL(request.url).pathname}`);
  });

  return {
    ...deps,
    app,
    fetch: (request, peerIp = null) => {
      attachPeer(request, peerIp);
      return app.handle(request);
    },
    start: async () => {
      // Leadership is known before the plugins start their background work.
      await cluster.start();
      await access.start();
      await host.start();
    },
    stop: async () => {
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
