/**
 * Start-up and shutdown of the gateway process, in order:
 * settings → store location → extra plugin modules → data dir → store (migrated) → plugins setup
 * → plugins start → listen. Everything that can be wrong with the configuration is found before
 * anything is created on disk.
 *
 * @module
 */
import { accessSync, chmodSync, constants, mkdirSync } from "node:fs";
import { join } from "node:path";
import { builtinPlugins } from "../../plugins/index.ts";
import { KEY_FILE, keyOpensStore, TokenCipher } from "../accounts/crypto.ts";
import { createGateway, type Gateway } from "../app/app.ts";
import type { Clock, Random } from "../core/clock.ts";
import { createLogger, type Logger } from "../core/logging.ts";
import { parseTrustedProxies } from "../firewall/forwarded.ts";
import type { Plugin } from "../plugin-host/api.ts";
import { importPlugin } from "../plugin-host/host.ts";
import { checkPlugins } from "../plugin-host/settings.ts";
import { GcPacer } from "../runtime/bun/gc-pacer.ts";
import { type Listening, listen } from "../runtime/bun/serve.ts";
import { shedStartupCode } from "../runtime/bun/startup-memory.ts";
import { bunUiAssets } from "../runtime/bun/ui-assets.ts";
import { loadSettings, readDotEnv, SettingsError } from "../settings/load.ts";
import type { Settings } from "../settings/schema.ts";
import { refuseForeignData } from "../store/foreign.ts";
import {
  describeLocation,
  openMigratedStore,
  resolveStoreLocation,
  type Store,
  type StoreLocation,
} from "../store/store.ts";

export interface Prepared {
  readonly settings: Readonly<Settings>;
  readonly location: StoreLocation;
  readonly plugins: readonly { plugin: Plugin; source: string }[];
  /** Each plugin's declared settings, read from `CODEX_LB_PLUGIN_<NAME>_*` and checked. */
  readonly pluginConfigs?: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
}

/** Services the core itself needs a plugin to provide (the proxy's credentials and stream leases). */
export const CORE_REQUIRES = ["credentials", "leases"] as const;

/** Reads and checks the whole configuration; throws SettingsError or PluginLoadError. Creates nothing. */
export async function prepare(env: Record<string, string | undefined>, cwd: string): Promise<Prepared> {
  const dotEnv = await readDotEnv(cwd);
  const settings = loadSettings(env, { cwd, dotEnv });
  let location: StoreLocation;
  try {
    location = resolveStoreLocation(settings.databaseUrl, settings.dataDir, cwd);
  } catch (e) {
    throw new SettingsError("CODEX_LB_DATABASE_URL", e instanceof Error ? e.message : String(e));
  }
  try {
    parseTrustedProxies(settings.trustedProxies);
  } catch (e) {
    throw new SettingsError("CODEX_LB_TRUSTED_PROXIES", e instanceof Error ? e.message : String(e));
  }
  const plugins: { plugin: Plugin; source: string }[] = builtinPlugins.map((plugin) => ({
    plugin,
    source: "builtin",
  }));
  for (const path of settings.plugins) plugins.push({ plugin: await importPlugin(path, cwd), source: path });
  // Declared settings, duplicate names and providers, missing required services: all found here.
  const pluginConfigs = checkPlugins(
    plugins.map((p) => p.plugin),
    { ...dotEnv, ...env },
    CORE_REQUIRES,
  );
  return { settings, location, plugins, pluginConfigs };
}

/**
 * A start-up failure whose cause is the configuration (a data dir that cannot be used, a host that
 * is not this machine's, a busy port): one line naming the variable, exit 2.
 */
export class StartupError extends Error {
  override name = "StartupError";
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/**
 * Creates the data dir with mode 0700 (and tightens it if it already exists); a dir that cannot be
 * created or written throws a {@link StartupError} naming `CODEX_LB_DATA_DIR`. First checks that
 * neither the store (a SQLite `location`) nor the key file in it belongs to someone else, such as
 * the Python codex-lb (`ForeignDataError`: nothing is created, changed or written then).
 */
export function ensureDataDir(dir: string, location?: StoreLocation): void {
  refuseForeignData(dir, location?.kind === "sqlite" ? location.path : ":memory:");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    accessSync(dir, constants.W_OK | constants.R_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    const why: Record<string, string> = {
      EACCES: "permission denied",
      EPERM: "permission denied",
      EROFS: "read-only file system",
      ENOTDIR: "a path component is a file, not a directory",
      EEXIST: "exists and is not a directory",
      ENOSPC: "no space left on the device",
    };
    throw new StartupError("CODEX_LB_DATA_DIR", `cannot use ${dir} as the data dir: ${why[code] ?? code}`);
  }
}

/** Turns a listen failure into the setting at fault: a busy port is told apart from a bad host. */
export function listenError(e: unknown, host: string, port: number): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return new StartupError(
      "CODEX_LB_PORT",
      `port ${port} on ${host} is already in use (another codex-lb or another program); pick another port or stop it`,
    );
  if (code === "EACCES")
    return new StartupError(
      "CODEX_LB_PORT",
      `permission denied to listen on port ${port} (ports below 1024 need privileges)`,
    );
  if (code === "EADDRNOTAVAIL" || code === "EINVAL" || code === "ENOTFOUND" || code === "EAI_NONAME")
    return new StartupError(
      "CODEX_LB_HOST",
      `cannot listen on ${JSON.stringify(host)}: not an address of this machine (${code}); use 127.0.0.1, 0.0.0.0 or one of its addresses`,
    );
  return e instanceof Error ? e : new Error(String(e));
}

export interface Running {
  readonly gateway: Gateway;
  readonly listening: Listening;
  readonly store: Store;
  readonly log: Logger;
  /** Graceful stop: no new requests, in-flight ones finish (up to the grace), plugins stop, store closes. */
  shutdown(): Promise<void>;
}

export async function boot(
  prepared: Prepared,
  log: Logger = createLogger(prepared.settings.logLevel),
  inject: {
    readonly clock?: Clock;
    readonly random?: Random;
    /**
     * Whether start-up's compiled code is dropped before listening (default true, as users run it;
     * see `src/runtime/bun/startup-memory.ts`). The test suite's many gateways in one process pass
     * false: each drop makes the engine compile everything, the test runner's code included, anew.
     */
    readonly shedStartupCode?: boolean;
  } = {},
): Promise<Running> {
  const { settings, location, plugins, pluginConfigs } = prepared;
  const { shedStartupCode: shed = true, ...clockAndRandom } = inject;
  ensureDataDir(settings.dataDir, location);
  const store = await openMigratedStore(location, { log: log.child({ component: "store" }) });
  if (!(await keyOpensStore(store.db, TokenCipher.forDataDir(settings.dataDir)))) {
    await store.close();
    throw new StartupError(
      "CODEX_LB_DATA_DIR",
      `${join(settings.dataDir, KEY_FILE)} cannot decrypt the tokens stored in ${describeLocation(location)}; every gateway on one database needs the same key: copy ${KEY_FILE} from the first one`,
    );
  }
  const gateway = await createGateway({
    settings,
    store,
    log,
    plugins,
    pluginConfigs,
    ...clockAndRandom,
    ui: bunUiAssets(),
  });
  await gateway.start();
  // WAL checkpoints on the gateway's timers, outside request commits; `store.close()` ends them.
  store.startCheckpoints(gateway.time, {
    onError: (e) => log.warn({ err: { message: e.message } }, "WAL checkpoint failed"),
  });
  // Start-up's compiled code (module bodies, set-up, migrations) is not needed again: idle memory.
  // Dropped before listening, so that no request waits for it.
  if (shed) await shedStartupCode();
  let listening: Listening;
  try {
    listening = listen(gateway.serve, {
      host: settings.host,
      port: settings.port,
      // Far above the setting so the app, not the socket layer (an empty 413), answers in the right
      // envelope: the app refuses a declared length over the limit before reading, and its body
      // guard stops a chunked body at the limit (src/core/body-guard.ts).
      maxRequestBodySize: 2 ** 40,
      maxWebSocketMessageBytes: settings.websocketMaxMessageBytes,
      connectionIdleTimeoutSeconds: settings.connectionIdleTimeoutSeconds,
      headersTimeoutSeconds: settings.headersTimeoutSeconds,
      maxPendingConnectionsPerAddress: settings.maxPendingConnectionsPerAddress,
      gc: new GcPacer({ step: settings.gcRequestStep, minIntervalMs: settings.gcMinIntervalMs }),
      onError: (e) =>
        log.error({ err: { message: e.message, stack: e.stack } }, "request failed in the server"),
    });
  } catch (e) {
    await gateway.stop();
    await store.close();
    throw listenError(e, settings.host, settings.port);
  }
  log.info(
    {
      host: listening.host,
      port: listening.port,
      store: describeLocation(location),
      plugins: gateway.host.plugins.map((p) => p.name),
    },
    "codex-lb listening",
  );
  if (!listening.guarded)
    log.warn(
      {},
      "this Bun's node:http does not expose its server: CODEX_LB_HEADERS_TIMEOUT_SECONDS and CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS are not applied (Bun's fixed ~10 s header limit is); use Bun 1.4.5 or a reverse proxy that limits both",
    );
  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      log.info({ graceSeconds: settings.shutdownGraceSeconds }, "shutting down");
      gateway.drain();
      await listening.close(settings.shutdownGraceSeconds * 1000);
      await gateway.stop();
      await store.close();
      log.info({}, "stopped");
    })();
    return stopping;
  };
  return { gateway, listening, store, log, shutdown };
}
