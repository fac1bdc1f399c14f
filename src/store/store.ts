/**
 * Opens the store: picks a dialect from the database URL, runs the bundled migrations with Kysely's
 * Migrator, and exposes the typed Kysely instance. Callers only ever see `Kysely<Database>`, so a
 * PostgreSQL dialect can be added here without touching them.
 *
 * @module
 */
import { chmodSync, mkdirSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { Kysely, type MigrationResultSet, Migrator, sql } from "kysely";
import { openSqlite } from "../runtime/bun/sqlite.ts";
import { refuseForeignStore } from "./foreign.ts";
import { bundledMigrations } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

export type StoreLocation = { readonly kind: "sqlite"; readonly path: string };

/**
 * Resolves `CODEX_LB_DATABASE_URL`: empty → `<dataDir>/store.db`; `sqlite:PATH`, `sqlite://PATH`,
 * `file:PATH` or a plain path → that SQLite file; `sqlite::memory:` → in memory. Anything else is
 * refused with a message naming what is supported.
 */
export function resolveStoreLocation(
  databaseUrl: string,
  dataDir: string,
  cwd = process.cwd(),
): StoreLocation {
  const url = databaseUrl.trim();
  if (url === "") return { kind: "sqlite", path: join(dataDir, "store.db") };
  const m = /^(sqlite|file):(?:\/\/)?(.*)$/.exec(url);
  if (m) {
    const p = m[2] ?? "";
    if (p === ":memory:") return { kind: "sqlite", path: ":memory:" };
    if (p === "") throw new Error("a sqlite: URL needs a path");
    return { kind: "sqlite", path: isAbsolute(p) ? p : resolve(cwd, p) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(
      `unsupported database scheme ${JSON.stringify(url.split(":")[0])}; this build supports SQLite (empty, a path, sqlite:PATH)`,
    );
  }
  return { kind: "sqlite", path: isAbsolute(url) ? url : resolve(cwd, url) };
}

export interface Store {
  readonly db: Kysely<Database>;
  readonly location: StoreLocation;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  /** Applies pending migrations; the result set lists each one's status. */
  migrate(): Promise<MigrationResultSet>;
  close(): Promise<void>;
}

/** Opens the store; throws `ForeignDataError` (writing nothing) when the file is not ours. */
export function openStore(location: StoreLocation): Store {
  refuseForeignStore(location.path);
  if (location.path !== ":memory:") mkdirSync(dirname(location.path), { recursive: true, mode: 0o700 });
  const handle = openSqlite(location.path);
  // Tokens (sealed), key hashes and the admin password hash live here: owner-only, like the data
  // dir. SQLite gives the -wal and -shm files the database file's permissions.
  if (location.path !== ":memory:") chmodSync(location.path, 0o600);
  const db = new Kysely<Database>({ dialect: handle.dialect });
  let closed = false;
  return {
    db,
    location,
    async ping() {
      if (closed) return false;
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    migrate: () => new Migrator({ db, provider: bundledMigrations }).migrateToLatest(),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
      handle.close();
    },
  };
}

/** Opens and migrates; throws with the failing migration's name if one fails. */
export async function openMigratedStore(location: StoreLocation): Promise<Store> {
  const store = openStore(location);
  const { error, results } = await store.migrate();
  if (error) {
    await store.close();
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return store;
}
