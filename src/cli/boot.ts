/**
 * Start-up and shutdown of the gateway process, in order:
 * settings → store location → extra plugin modules → data dir → store (migrated) → plugins setup
 * → plugins start → listen. Everything that can be wrong with the configuration is found before
 * anything is created on disk.
 *
 * @module
 */
import { chmodSync, mkdirSync } from "node:fs";
import { builtinPlugins } from "../../plugins/index.ts";
import { createGateway, type Gateway } from "../app/app.ts";
import { createLogger, type Logger } from "../app/logging.ts";
import { parseTrustedProxies } from "../firewall/forwarded.ts";
import type { Plugin } from "../plugin-host/api.ts";
import { importPlugin } from "../plugin-host/host.ts";
import { type Listening, listen } from "../runtime/bun/serve.ts";
import { loadSettings, readDotEnv, SettingsError } from "../settings/load.ts";
import type { Settings } from "../settings/schema.ts";
import { openMigratedStore, resolveStoreLocation, type Store, type StoreLocation } from "../store/store.ts";

export interface Prepared {
  readonly settings: Readonly<Settings>;
  readonly location: StoreLocation;
  readonly plugins: readonly { plugin: Plugin; source: string }[];
}

/** Reads and checks the whole configuration; throws SettingsError or PluginLoadError. Creates nothing. */
export async function prepare(env: Record<string, string | undefined>, cwd: string): Promise<Prepared> {
  const settings = loadSettings(env, { cwd, dotEnv: await readDotEnv(cwd) });
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
  return { settings, location, plugins };
}

/** Creates the data dir with mode 0700 (and tightens it if it already exists). */
export function ensureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
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
): Promise<Running> {
  const { settings, location, plugins } = prepared;
  ensureDataDir(settings.dataDir);
  const store = await openMigratedStore(location);
  const gateway = await createGateway({ settings, store, log, plugins });
  await gateway.start();
  const listening = listen(gateway.fetch, {
    host: settings.host,
    port: settings.port,
    // Far above the setting so the app, not the socket layer (an empty 413), answers in the right
    // envelope: the app refuses a declared length over the limit before reading, and its body guard
    // stops a chunked body at the limit (src/app/body-guard.ts).
    maxRequestBodySize: 2 ** 40,
    onError: (e) =>
      log.error({ err: { message: e.message, stack: e.stack } }, "request failed in the server"),
  });
  log.info(
    {
      host: listening.host,
      port: listening.port,
      store: location.path,
      plugins: gateway.host.plugins.map((p) => p.name),
    },
    "codex-lb listening",
  );
  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      log.info({ graceSeconds: settings.shutdownGraceSeconds }, "shutting down");
      await listening.close(settings.shutdownGraceSeconds * 1000);
      await gateway.stop();
      await store.close();
      log.info({}, "stopped");
    })();
    return stopping;
  };
  return { gateway, listening, store, log, shutdown };
}
