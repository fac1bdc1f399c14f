/**
 * Plugin-declared settings and services, checked before anything starts.
 *
 * A plugin declares its settings as a TypeBox object schema (or a function of TypeBox's `Type`, so
 * a plugin with only `import type` can declare one); each field is read from
 * `CODEX_LB_PLUGIN_<NAME>_<FIELD>` (the plugin name and the field in upper snake case:
 * `examples.custom-refresh-codes` + `deadCodes` → `CODEX_LB_PLUGIN_EXAMPLES_CUSTOM_REFRESH_CODES_DEAD_CODES`),
 * converted like the core settings, defaults filled in, and frozen. A bad value, or a
 * `CODEX_LB_PLUGIN_*` variable no loaded plugin declares, is a {@link SettingsError} (one line, exit 2).
 *
 * A plugin also declares the services it `provides` and `requires`; a missing provider or a service
 * provided twice is a {@link PluginLoadError} at start-up, never a surprise at request time.
 *
 * @module
 */
import { type TObject, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { convertEnvValue, PLUGIN_ENV_PREFIX, SettingsError } from "../settings/load.ts";
import type { Plugin, ProviderKey } from "./api.ts";
import { PluginLoadError } from "./errors.ts";

type Env = Readonly<Record<string, string | undefined>>;

const snake = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toUpperCase();

/** `CODEX_LB_PLUGIN_<NAME>_`: the prefix of a plugin's environment variables. */
export function pluginEnvPrefix(pluginName: string): string {
  return `${PLUGIN_ENV_PREFIX}${snake(pluginName)}_`;
}

/** The environment variable of one declared setting. */
export function pluginEnvName(pluginName: string, field: string): string {
  return `${pluginEnvPrefix(pluginName)}${snake(field)}`;
}

/** The plugin's settings schema, or null when it declares none. */
export function settingsSchemaOf(plugin: Plugin): TObject | null {
  const s = plugin.settings;
  if (s === undefined) return null;
  const schema = typeof s === "function" ? s(Type) : s;
  if (schema?.type !== "object" || typeof schema.properties !== "object") {
    throw new PluginLoadError(`plugin ${plugin.name}: settings must be a TypeBox object schema`);
  }
  return schema;
}

/** Reads, converts, checks and freezes one plugin's settings from the environment. */
export function loadPluginSettings(plugin: Plugin, env: Env): Readonly<Record<string, unknown>> {
  const schema = settingsSchemaOf(plugin);
  if (!schema) return Object.freeze({});
  const out: Record<string, unknown> = {};
  for (const [field, fieldSchema] of Object.entries(schema.properties as Record<string, TSchema>)) {
    const name = pluginEnvName(plugin.name, field);
    const raw = env[name];
    if (raw !== undefined) out[field] = convertEnvValue(name, fieldSchema, raw);
    else if (fieldSchema.default !== undefined) out[field] = structuredClone(fieldSchema.default);
    else if (!(schema.required ?? []).includes(field)) continue;
    else throw new SettingsError(name, "required by the plugin and not set");
  }
  if (!Value.Check(schema, out)) {
    const first = Value.Errors(schema, out).First();
    const field = first?.path.split("/")[1] ?? "";
    throw new SettingsError(
      field ? pluginEnvName(plugin.name, field) : pluginEnvPrefix(plugin.name),
      first?.message ?? "invalid plugin settings",
    );
  }
  return Object.freeze(out);
}

/**
 * Checks a set of plugins before any of them is set up: unique names, every `CODEX_LB_PLUGIN_*`
 * variable declared by a loaded plugin, settings valid, each service provided at most once, and
 * every required service (the plugins' and `coreRequires`) provided by someone. Returns each
 * plugin's settings. Throws {@link SettingsError} or {@link PluginLoadError} with a one-line message.
 */
export function checkPlugins(
  plugins: readonly Plugin[],
  env: Env,
  coreRequires: readonly ProviderKey[] = [],
): Map<string, Readonly<Record<string, unknown>>> {
  const names = new Set<string>();
  for (const p of plugins) {
    if (names.has(p.name)) throw new PluginLoadError(`plugin ${p.name} is registered twice`);
    names.add(p.name);
  }
  const declared = new Set<string>();
  for (const p of plugins) {
    const schema = settingsSchemaOf(p);
    for (const field of Object.keys(schema?.properties ?? {})) declared.add(pluginEnvName(p.name, field));
  }
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && name.startsWith(PLUGIN_ENV_PREFIX) && !declared.has(name)) {
      throw new SettingsError(name, "no loaded plugin declares this setting");
    }
  }
  const configs = new Map<string, Readonly<Record<string, unknown>>>();
  for (const p of plugins) configs.set(p.name, loadPluginSettings(p, env));
  const providers = new Map<string, string>();
  for (const p of plugins) {
    for (const key of p.provides ?? []) {
      const other = providers.get(key);
      if (other) throw new PluginLoadError(`plugin ${p.name}: ${key} is already provided by ${other}`);
      providers.set(key, p.name);
    }
  }
  const needs: [string, ProviderKey][] = [
    ...coreRequires.map((k): [string, ProviderKey] => ["the gateway", k]),
    ...plugins.flatMap((p) => (p.requires ?? []).map((k): [string, ProviderKey] => [`plugin ${p.name}`, k])),
  ];
  for (const [who, key] of needs) {
    if (!providers.has(key)) {
      throw new PluginLoadError(`${who} requires ${key}, and no loaded plugin provides it`);
    }
  }
  return configs;
}
