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
import { isPublicAdminPath } from "../access/admin-auth/guard.ts";
import { contentTypeRefusal, crossOriginRefusal, normalizeOrigin } from "../access/csrf.ts";
import { TokenCipher } from "../accounts/crypto.ts";
import { AccountRepository } from "../accounts/repository.ts";
import { SnapshotCache } from "../accounts/snapshot-cache.ts";
import { getSnapshot, listSnapshots } from "../accounts/snapshots.ts";
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
import { BodyGuard, type BodySlot } from "./body-guard.ts";
import type { AppDeps } from "./deps.ts";
import { pathOf, renderError } from "./errors.ts";
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
  readonly clock?: () => number;
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
  const clock = opts.clock ?? Date.now;
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
  );
  const accounts = new AccountRepository(store.db, cipher, clock);
  const snapshotCache = new SnapshotCache(() => listSnapshots(store.db));
  applier.onApplied(() => snapshotCache.invalidate());
  accounts.onChange(() => snapshotCache.invalidate());
  const oauth = new OAuthFlows(settings, accounts, log.child({ component: "oauth" }), clock);
  const access = createAccessControl({ settings, store, log, clock, runtimeSettings, cipher });
  const bodyGuard = new BodyGuard({
    maxBytes: settings.maxBodyBytes,
    timeoutMs: settings.bodyTimeoutSeconds * 1000,
    maxPendingPerAddress: settings.maxUnauthenticatedPerAddress,
  });
  const allowedOrigins = new Set(
    settings.allowedOrigins.map((o) => normalizeOrigin(o)).filter((o): o is string => o !== null),
  );
  // A key's usage changed once its request-log rows are in: its cached limit states are stale.
  requestLogs.onWritten((rows) => {
    for (const r of rows) access.keyStates.invalidate(r.api_key_id ?? null);
  });
  const services: GatewayServices = {
    fire: (hook, event, o) => dispatcher.fire(hook, event, o),
    apply: (actions, o) => applier.apply(actions, { source: o.source, requestId: o.requestId ?? null }),
    accounts: {
      list: () => snapshotCache.list(),
      get: (id) => getSnapshot(store.db, id),
      credentials: (id) => accounts.credentials(id),
      saveTokens: (id, tokens, o) => accounts.saveTokens(id, tokens, o),
    },
    usage: { record: (id, usage) => accounts.recordUsage(id, usage) },
    now: clock,
    sticky: createStickyService(sticky, runtimeSettings, clock, (id) => requestLogs.responseOwner(id)),
    runtimeSettings,
    firewall: { allowlist: () => access.firewall.allowlist() },
    provider: (key) => host.provider(key),
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
    runtimeSettings,
    sticky,
    accounts,
    oauth,
    onStop: (fn) => stops.push(fn),
    requestLogs,
    access,
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
      // Authenticated (a key, a session, or this machine) on a guarded route: the request no longer
      // counts against its address's unauthenticated cap.
      if (!refused && surface !== "public" && !isPublicAdminPath(url.pathname)) info.releaseBodySlot?.();
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
    fetch: async (request, peerIp = null) => {
      attachPeer(request, peerIp);
      // A Host that makes no URL (`a b`, `[::1`) would throw in every later step: one JSON 400 here.
      if (!URL.canParse(request.url)) {
        const requestId = chooseRequestId(request.headers);
        log.warn(
          { requestId, peerIp, host: (request.headers.get("host") ?? "").slice(0, 100) },
          "malformed request URL or Host header",
        );
        return errorResponse(
          new GatewayError("bad_request", "The request's Host header or URL is malformed"),
          "admin",
          requestId,
        );
      }
      let guarded = request;
      let slot: BodySlot | null = null;
      if (request.body !== null) {
        const address = access.clientIpOf(request, peerIp) ?? peerIp ?? "unknown";
        try {
          slot = bodyGuard.take(address);
        } catch (e) {
          const requestId = chooseRequestId(request.headers);
          log.warn({ requestId, peerIp, clientIp: address }, "too many unauthenticated requests in progress");
          return errorResponse(e as GatewayError, envelopeFor(pathOf(request)), requestId);
        }
        const held = slot;
        guarded = new Request(request.url, {
          method: request.method,
          headers: request.headers,
          body: bodyGuard.guard(request.body, () => held.release()),
          signal: request.signal,
          duplex: "half",
        } as RequestInit);
        attachPeer(guarded, peerIp);
        infoOf(guarded).releaseBodySlot = held.release;
      }
      try {
        return await app.handle(guarded);
      } catch (e) {
        log.error(
          { err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) },
          "request failed outside the app's error handler",
        );
        return errorResponse(
          new GatewayError("server_error"),
          envelopeFor(pathOf(request)),
          infoOf(guarded).requestId,
        );
      } finally {
        slot?.release();
      }
    },
    start: async () => {
      await access.start();
      await host.start();
    },
    stop: async () => {
      await oauth.stop();
      await host.stop();
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
