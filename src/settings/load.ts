/**
 * Reads settings from `CODEX_LB_*` environment variables (and an optional `.env` file in the working
 * directory), converts and validates them against {@link SettingsSchema}. A bad value throws a
 * {@link SettingsError} whose message is one line naming the variable.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { envNameOf, type Settings, SettingsSchema } from "./schema.ts";

export class SettingsError extends Error {
  override name = "SettingsError";
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid setting ${variable}: ${problem}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables of plugin-declared settings start with this. */
export const PLUGIN_ENV_PREFIX = "CODEX_LB_PLUGIN_";

/** Parses a `.env` file's text: `KEY=value` lines, `#` comments, optional single or double quotes. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] ?? "";
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, "");
    out[m[1]!] = value;
  }
  return out;
}

function describeExpected(schema: TSchema): string {
  if (schema.anyOf) return `one of ${schema.anyOf.map((s: TSchema) => JSON.stringify(s.const)).join(", ")}`;
  if (schema.type === "integer" || schema.type === "number") {
    const range =
      schema.minimum !== undefined && schema.maximum !== undefined
        ? ` from ${schema.minimum} to ${schema.maximum}`
        : schema.minimum !== undefined
          ? ` >= ${schema.minimum}`
          : "";
    return `${schema.type === "integer" ? "an integer" : "a number"}${range}`;
  }
  if (schema.httpUrl) return "an http(s) URL";
  if (schema.type === "array") return "a comma-separated list";
  if (schema.type === "boolean") return "true or false";
  return "a non-empty string";
}

function convertOne(key: string, schema: TSchema, raw: string): unknown {
  return convertEnvValue(envNameOf(key), schema, raw);
}

/**
 * Converts one environment value to what `schema` wants (numbers, booleans, comma-separated lists,
 * URLs) and checks it; a bad value throws a {@link SettingsError} naming `name`. Used for the core
 * settings and for the settings plugins declare.
 */
export function convertEnvValue(name: string, schema: TSchema, raw: string): unknown {
  let candidate: unknown;
  if (schema.csv) {
    candidate = raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  } else if (schema.type === "integer" || schema.type === "number") {
    candidate = raw.trim() === "" ? Number.NaN : Number(raw.trim());
  } else if (schema.type === "boolean") {
    const v = raw.trim().toLowerCase();
    candidate = v === "true" || v === "1" ? true : v === "false" || v === "0" ? false : raw;
  } else if (schema.httpUrl) {
    candidate = raw.trim().replace(/\/+$/, "");
  } else {
    candidate = raw.trim();
  }
  if (!Value.Check(schema, candidate)) {
    throw new SettingsError(name, `expected ${describeExpected(schema)}, got ${JSON.stringify(raw)}`);
  }
  return candidate;
}

/** Expands `~` and makes a path absolute against `cwd`. */
export function expandPath(p: string, cwd: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/")) return join(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(cwd, p);
}

/**
 * Builds frozen settings from an environment. Variables from `dotEnv` are used only where the
 * process environment does not set them. Unknown `CODEX_LB_*` variables are refused so a typo does
 * not silently fall back to a default.
 */
export function loadSettings(env: Env, opts: { cwd?: string; dotEnv?: Env } = {}): Readonly<Settings> {
  const cwd = opts.cwd ?? process.cwd();
  const merged: Record<string, string | undefined> = { ...(opts.dotEnv ?? {}), ...env };
  const props = SettingsSchema.properties as Record<string, TSchema>;
  const known = new Map(Object.keys(props).map((k) => [envNameOf(k), k]));
  for (const name of Object.keys(merged)) {
    // `CODEX_LB_PLUGIN_<NAME>_*` belong to plugins; the plugin host checks them once plugins are known.
    if (name.startsWith(PLUGIN_ENV_PREFIX)) continue;
    if (name.startsWith("CODEX_LB_") && !known.has(name) && merged[name] !== undefined) {
      throw new SettingsError(name, "unknown setting (see `codex-lb config` for the list)");
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(props)) {
    const raw = merged[envNameOf(key)];
    out[key] = raw === undefined ? structuredClone(schema.default) : convertOne(key, schema, raw);
  }
  const settings = out as Settings;
  settings.dataDir = expandPath(settings.dataDir, cwd);
  return Object.freeze(settings);
}

/** Reads `.env` from `cwd` when present; a missing file is not an error. */
export async function readDotEnv(cwd: string): Promise<Record<string, string>> {
  try {
    return parseDotEnv(await readFile(join(cwd, ".env"), "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw e;
  }
}
