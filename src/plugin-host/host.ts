/**
 * The plugin host: loads built-in and on-disk plugins, runs their `setup` in a defined order, and
 * owns their start/stop lifecycle. Misuse (duplicate name, bad module, unknown hook) is refused at
 * start-up with a {@link PluginLoadError}, never at request time.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Elysia } from "elysia";
import type { Settings } from "../settings/schema.ts";
import type { GatewayServices, Plugin, PluginLogger, Providers } from "./api.ts";
import { PluginLoadError } from "./errors.ts";
import type { HookBus } from "./hooks.ts";
import { loadPluginSettings } from "./settings.ts";

export { PluginLoadError };

const NAME = /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$/;

/** Imports a plugin module from a path; its default export (or `plugin` export) is the plugin. */
export async function importPlugin(path: string, cwd: string): Promise<Plugin> {
  const abs = isAbsolute(path) ? path : resolve(cwd, path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    throw new PluginLoadError(
      `cannot load plugin ${path}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`,
    );
  }
  let candidate = mod.default ?? mod.plugin;
  if (typeof candidate === "function") candidate = await (candidate as () => unknown)();
  assertPlugin(candidate, path);
  return candidate;
}

function assertPlugin(p: unknown, where: string): asserts p is Plugin {
  const o = p as Partial<Plugin> | null;
  if (!o || typeof o !== "object")
    throw new PluginLoadError(`plugin ${where}: the module exports no plugin object (default export)`);
  if (typeof o.name !== "string" || !NAME.test(o.name)) {
    throw new PluginLoadError(
      `plugin ${where}: name must be lowercase and dot-namespaced, got ${JSON.stringify(o.name)}`,
    );
  }
  if (typeof o.setup !== "function") throw new PluginLoadError(`plugin ${o.name}: setup is not a function`);
}

export interface HostDeps {
  readonly bus: HookBus;
  readonly services: GatewayServices;
  /** The services one plugin gets (its actions attributed to it); `services` when absent. */
  readonly servicesFor?: (plugin: string) => GatewayServices;
  readonly settings: Readonly<Settings>;
  readonly logFor: (plugin: string) => PluginLogger;
  /** Each plugin's checked settings (from `checkPlugins`); read from `env` when absent. */
  readonly configs?: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** The environment plugin settings are read from when `configs` has none (default: empty). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

type Lifecycle = () => void | Promise<void>;

export interface LoadedPlugin {
  readonly name: string;
  readonly version: string | null;
  readonly source: "builtin" | string;
  readonly http: Elysia;
}

export class PluginHost {
  readonly plugins: LoadedPlugin[] = [];
  readonly #providers = new Map<keyof Providers, { plugin: string; impl: unknown }>();
  readonly #starts: { name: string; fn: Lifecycle }[] = [];
  readonly #stops: { name: string; fn: Lifecycle }[] = [];
  #setupDone = false;

  constructor(private readonly deps: HostDeps) {}

  /** Runs `setup` of each plugin in the given order; then no more hooks may be added. */
  async setup(entries: readonly { plugin: Plugin; source: string }[]): Promise<void> {
    if (this.#setupDone) throw new PluginLoadError("plugins were already set up");
    const seen = new Set<string>();
    for (const { plugin, source } of entries) {
      assertPlugin(plugin, source);
      if (seen.has(plugin.name))
        throw new PluginLoadError(`plugin ${plugin.name} is registered twice (${source})`);
      seen.add(plugin.name);
      const http = new Elysia({ name: `plugin:${plugin.name}` });
      let open = true;
      const declared = new Set<string>(plugin.provides ?? []);
      let config: Readonly<Record<string, unknown>>;
      try {
        config = this.deps.configs?.get(plugin.name) ?? loadPluginSettings(plugin, this.deps.env ?? {});
      } catch (e) {
        throw new PluginLoadError(`plugin ${plugin.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
      const ctx = {
        name: plugin.name,
        settings: this.deps.settings,
        config,
        log: this.deps.logFor(plugin.name),
        http,
        services: this.deps.servicesFor?.(plugin.name) ?? this.deps.services,
        on: (hook, handler, options) => {
          if (!open)
            throw new PluginLoadError(`plugin ${plugin.name}: hooks can only be registered during setup`);
          this.deps.bus.on(plugin.name, hook, handler, options);
        },
        provide: (key, impl) => {
          if (!open)
            throw new PluginLoadError(`plugin ${plugin.name}: providers can only be registered during setup`);
          // Undeclared providers still work, but start-up checks cannot see them before setup.
          if (!declared.has(key))
            this.deps
              .logFor(plugin.name)
              .warn({ provides: key }, "plugin provides a service it does not declare in `provides`");
          const existing = this.#providers.get(key);
          if (existing)
            throw new PluginLoadError(
              `plugin ${plugin.name}: ${key} is already provided by ${existing.plugin}`,
            );
          this.#providers.set(key, { plugin: plugin.name, impl });
        },
        onStart: (fn: Lifecycle) => this.#starts.push({ name: plugin.name, fn }),
        onStop: (fn: Lifecycle) => this.#stops.push({ name: plugin.name, fn }),
      } satisfies import("./api.ts").PluginContext;
      try {
        await plugin.setup(ctx);
      } catch (e) {
        if (e instanceof PluginLoadError) throw e;
        throw new PluginLoadError(
          `plugin ${plugin.name}: setup failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      } finally {
        open = false;
      }
      for (const key of declared) {
        if (
          !this.#providers.has(key as keyof Providers) ||
          this.providerOf(key as keyof Providers) !== plugin.name
        )
          throw new PluginLoadError(
            `plugin ${plugin.name}: declares it provides ${key} but did not provide it`,
          );
      }
      this.plugins.push({ name: plugin.name, version: plugin.version ?? null, source, http });
    }
    for (const { plugin } of entries) {
      for (const key of plugin.requires ?? []) {
        if (!this.#providers.has(key))
          throw new PluginLoadError(
            `plugin ${plugin.name} requires ${key}, and no loaded plugin provides it`,
          );
      }
    }
    this.deps.bus.seal();
    this.#setupDone = true;
  }

  /** The plugin registered as the provider of `key`, or null. */
  providerOf(key: keyof Providers): string | null {
    return this.#providers.get(key)?.plugin ?? null;
  }

  /** The provider registered under `key`; throws a clear error when none is. */
  provider<K extends keyof Providers>(key: K): Providers[K] {
    const p = this.#providers.get(key);
    if (!p) throw new Error(`no plugin provides ${key}`);
    return p.impl as Providers[K];
  }

  async start(): Promise<void> {
    for (const { name, fn } of this.#starts) {
      try {
        await fn();
      } catch (e) {
        throw new PluginLoadError(
          `plugin ${name}: start failed: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
  }

  /** Stops plugins in reverse order; one failing stop does not keep the others from running. */
  async stop(): Promise<void> {
    for (const { name, fn } of [...this.#stops].reverse()) {
      try {
        await fn();
      } catch (e) {
        this.deps
          .logFor(name)
          .error({ err: e instanceof Error ? e.message : String(e) }, "plugin stop failed");
      }
    }
  }
}
