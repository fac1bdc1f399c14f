/**
 * What store-touching commands share: settings from the environment (with flag overrides), the
 * data dir, the migrated store, one line on stderr naming the store used, and output as text or
 * JSON.
 *
 * @module
 */
import { SettingsError } from "../settings/load.ts";
import type { Settings } from "../settings/schema.ts";
import { describeLocation, openMigratedStore, type Store, type StoreLocation } from "../store/store.ts";
import type { Io, Parsed } from "./args.ts";
import { ensureDataDir, prepare } from "./boot.ts";

/** Flags that override a setting: `--port 8080` wins over `CODEX_LB_PORT`. */
export const SETTING_FLAGS: Readonly<Record<string, string>> = {
  host: "CODEX_LB_HOST",
  port: "CODEX_LB_PORT",
  "data-dir": "CODEX_LB_DATA_DIR",
};

/** The environment with the flag overrides applied. */
export function envWithFlags(io: Io, p: Parsed): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...io.env };
  for (const [flag, variable] of Object.entries(SETTING_FLAGS)) {
    const v = p.flags[flag];
    if (typeof v === "string") env[variable] = v;
  }
  return env;
}

/** Settings as `prepare` reads them, a bad flag value named as the flag rather than the variable. */
export async function settingsFor(io: Io, p: Parsed) {
  try {
    return await prepare(envWithFlags(io, p), io.cwd);
  } catch (e) {
    if (e instanceof SettingsError) {
      const flag = Object.entries(SETTING_FLAGS).find(
        ([f, v]) => v === e.variable && typeof p.flags[f] === "string",
      );
      if (flag) throw new SettingsError(`--${flag[0]}`, e.problem);
    }
    throw e;
  }
}

export interface StoreContext {
  readonly settings: Readonly<Settings>;
  readonly location: StoreLocation;
  readonly store: Store;
}

/** Opens (and migrates) the configured store, names it on stderr, runs `fn`, closes the store. */
export async function withStore<T>(io: Io, p: Parsed, fn: (c: StoreContext) => Promise<T>): Promise<T> {
  const { settings, location } = await settingsFor(io, p);
  ensureDataDir(settings.dataDir, location);
  io.stderr.write(`codex-lb: store ${describeLocation(location)}\n`);
  const store = await openMigratedStore(location);
  try {
    return await fn({ settings, location, store });
  } finally {
    await store.close();
  }
}

/** Prints rows as aligned columns (text) or as one JSON document. */
export function printList(
  io: Io,
  json: boolean,
  value: unknown,
  rows: readonly (readonly string[])[],
  head: readonly string[],
): void {
  if (json) {
    io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    io.stdout.write("(none)\n");
    return;
  }
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  for (const r of all)
    io.stdout.write(
      `${r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd()}\n`,
    );
}

export const JSON_FLAG = { name: "json", help: "print JSON instead of a table" } as const;

/** ISO 8601 for a table cell; "-" for none. */
export const iso = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? "-" : new Date(Number(ms)).toISOString();
