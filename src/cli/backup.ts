/**
 * `codex-lb backup FILE` and `codex-lb restore FILE`. A backup is one SQLite file: a consistent
 * online copy of the store (`VACUUM INTO`, safe while the gateway serves) plus one extra table,
 * `codex_lb_backup`, holding the encryption key that seals the account tokens, so the copy is
 * restorable on another machine. The file is created with mode 0600: it opens every account.
 *
 * @module
 */

import { chmodSync, copyFileSync, existsSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Kysely, sql } from "kysely";
import { KEY_FILE, loadOrCreateKey } from "../accounts/crypto.ts";
import { systemClock } from "../core/clock.ts";
import { openSqlite } from "../runtime/bun/sqlite.ts";
import { openMigratedStore } from "../store/store.ts";
import { type Command, EXIT, type Io, type Parsed } from "./args.ts";
import { ensureDataDir } from "./boot.ts";
import { settingsFor, withStore } from "./context.ts";

const TABLE = "codex_lb_backup";
const FORCE = { name: "force", help: "overwrite an existing file (backup) or store (restore)" } as const;

// biome-ignore lint/suspicious/noExplicitAny: the backup file's extra table is outside the store's schema.
type AnyDb = Kysely<any>;

function openFile(path: string): { db: AnyDb; close(): Promise<void> } {
  const handle = openSqlite(path, { wal: false });
  const db: AnyDb = new Kysely({ dialect: handle.dialect });
  return {
    db,
    async close() {
      await db.destroy();
      handle.close();
    },
  };
}

function fail(io: Io, msg: string, code: number = EXIT.failure): number {
  io.stderr.write(`codex-lb: ${msg}\n`);
  return code;
}

async function backup(p: Parsed, io: Io): Promise<number> {
  const file = resolve(io.cwd, p.args[0]!);
  if (existsSync(file) && p.flags.force !== true)
    return fail(io, `${file} exists; pass --force to overwrite it`, EXIT.usage);
  return withStore(io, p, async ({ store, settings, location }) => {
    if (location.kind !== "sqlite")
      return fail(io, "backup copies a SQLite store; for PostgreSQL use pg_dump and copy encryption.key");
    if (location.kind !== "sqlite")
      return fail(io, "restore writes a SQLite store; for PostgreSQL use pg_restore", EXIT.usage);
    if (location.path === ":memory:") return fail(io, "the store is in memory: nothing to back up");
    const key = loadOrCreateKey(settings.dataDir);
    const tmp = `${file}.partial-${process.pid}`;
    rmSync(tmp, { force: true });
    try {
      // A consistent snapshot taken in one read transaction: writers go on meanwhile.
      await sql`VACUUM INTO ${tmp}`.execute(store.db);
      chmodSync(tmp, 0o600);
      const copy = openFile(tmp);
      try {
        await sql`CREATE TABLE ${sql.table(TABLE)} (key TEXT NOT NULL, created_at INTEGER NOT NULL, source TEXT NOT NULL)`.execute(
          copy.db,
        );
        await sql`INSERT INTO ${sql.table(TABLE)} (key, created_at, source) VALUES (${Buffer.from(key).toString("base64")}, ${systemClock.now()}, ${location.path})`.execute(
          copy.db,
        );
      } finally {
        await copy.close();
      }
      rmSync(`${tmp}-wal`, { force: true });
      rmSync(`${tmp}-shm`, { force: true });
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    const size = statSync(file).size;
    io.stdout.write(`backup written: ${file} (${size} bytes, store and encryption key; keep it private)\n`);
    return EXIT.ok;
  });
}

async function restore(p: Parsed, io: Io): Promise<number> {
  const file = resolve(io.cwd, p.args[0]!);
  if (!existsSync(file)) return fail(io, `cannot read ${file}: ENOENT`, EXIT.usage);
  const { settings, location } = await settingsFor(io, p);
  if (location.kind !== "sqlite")
    return fail(io, "restore writes a SQLite store; for PostgreSQL use pg_restore", EXIT.usage);
  if (location.path === ":memory:")
    return fail(io, "the store is in memory: nowhere to restore to", EXIT.usage);
  ensureDataDir(settings.dataDir, location);
  io.stderr.write(`codex-lb: store ${location.path}\n`);
  const keyPath = join(settings.dataDir, KEY_FILE);
  if ((existsSync(location.path) || existsSync(keyPath)) && p.flags.force !== true)
    return fail(
      io,
      `${existsSync(location.path) ? location.path : keyPath} exists; stop the gateway and pass --force to replace it (the old files are kept beside it)`,
      EXIT.usage,
    );
  const tmp = `${location.path}.restoring-${process.pid}`;
  copyFileSync(file, tmp);
  chmodSync(tmp, 0o600);
  let key: string;
  try {
    const copy = openFile(tmp);
    try {
      const rows = await sql<{ key: string }>`SELECT key FROM ${sql.table(TABLE)}`
        .execute(copy.db)
        .catch(() => ({ rows: [] as { key: string }[] }));
      const k = rows.rows[0]?.key;
      if (!k || Buffer.from(k, "base64").length !== 32) {
        await copy.close();
        rmSync(tmp, { force: true });
        return fail(io, `${file} is not a codex-lb backup (no ${TABLE} table with a key)`, EXIT.usage);
      }
      key = k;
      await sql`DROP TABLE ${sql.table(TABLE)}`.execute(copy.db);
    } finally {
      await copy.close().catch(() => {});
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    return fail(
      io,
      `${file} is not a readable SQLite file: ${e instanceof Error ? e.message : String(e)}`,
      EXIT.usage,
    );
  }
  const stamp = new Date(systemClock.now()).toISOString().replace(/[:.]/g, "-");
  const kept: string[] = [];
  for (const path of [location.path, `${location.path}-wal`, `${location.path}-shm`, keyPath]) {
    if (existsSync(path)) {
      renameSync(path, `${path}.before-restore-${stamp}`);
      kept.push(`${path}.before-restore-${stamp}`);
    }
  }
  rmSync(`${tmp}-wal`, { force: true });
  rmSync(`${tmp}-shm`, { force: true });
  renameSync(tmp, location.path);
  writeFileSync(keyPath, `${key}\n`, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  // Brings an older backup up to this version's schema.
  const store = await openMigratedStore(location);
  await store.close();
  io.stdout.write(`restored ${file} into ${location.path} (and ${keyPath})\n`);
  if (kept.length > 0) io.stdout.write(`previous files kept: ${kept.join(", ")}\n`);
  return EXIT.ok;
}

export const backupCommand: Command = {
  name: "backup",
  summary: "write a consistent copy of the store and its encryption key to FILE (safe while serving)",
  description:
    "FILE is one SQLite file (mode 0600) that holds every account's sealed tokens AND the key that\n" +
    "opens them: keep it as private as the data dir. Restore it with `codex-lb restore FILE`.",
  flags: [FORCE],
  args: [{ name: "FILE", complete: "file" }],
  run: backup,
};

export const restoreCommand: Command = {
  name: "restore",
  summary: "replace the store and encryption key with those of a backup FILE (gateway stopped)",
  description:
    "Stop the gateway first. An existing store and key are renamed to *.before-restore-<time>, never\n" +
    "deleted; without --force an existing store is refused. The restored store is migrated to this version.",
  flags: [FORCE],
  args: [{ name: "FILE", complete: "file" }],
  run: restore,
};
