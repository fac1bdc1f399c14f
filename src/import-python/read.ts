/**
 * Reads what the import needs from a Python codex-lb `store.db`, without writing it (see
 * `readSqliteSnapshot`): whole rows of the tables listed in the fact sheet, as plain objects.
 * A table an older release did not have reads as empty, and is named in `missingTables`.
 *
 * @module
 */
import { inspectStoreFile, readSqliteSnapshot } from "../store/foreign.ts";

export type Row = Readonly<Record<string, unknown>>;

/** The Python store's rows, per table we import. */
export interface PythonSnapshot {
  readonly alembicVersion: string | null;
  readonly accounts: readonly Row[];
  readonly apiKeys: readonly Row[];
  readonly apiKeyLimits: readonly Row[];
  readonly firewall: readonly Row[];
  readonly sticky: readonly Row[];
  /** The `dashboard_settings` row (id 1), or null. */
  readonly settings: Row | null;
  /** Local dashboard users of releases that have them (their password hashes), oldest first. */
  readonly dashboardUsers: readonly Row[];
  readonly missingTables: readonly string[];
  /** Every table in the file, including the ones we ignore. */
  readonly tables: readonly string[];
  /** Tables not imported that hold rows (history, features we do not have), with their row counts. */
  readonly ignoredWithRows: readonly { readonly table: string; readonly rows: number }[];
}

/** Why a source cannot be imported (bad path, not a Python store, wrong key): a 400 / exit 2. */
export class ImportSourceError extends Error {
  override name = "ImportSourceError";
  constructor(
    message: string,
    /** `wrong_key`: the key does not decrypt the store; `invalid_source`: anything else. */
    readonly code: "invalid_source" | "wrong_key" = "invalid_source",
  ) {
    super(message);
  }
}

const WANTED = {
  accounts: "accounts",
  apiKeys: "api_keys",
  apiKeyLimits: "api_key_limits",
  firewall: "api_firewall_allowlist",
  sticky: "sticky_sessions",
} as const;

/** Reads the Python store at `path`; throws {@link ImportSourceError} when it is not one. */
export function readPythonStore(path: string): PythonSnapshot {
  const { kind, tables } = inspectStoreFile(path);
  if (kind === "absent") throw new ImportSourceError(`${path} does not exist`);
  if (kind === "ours") throw new ImportSourceError(`${path} is already a codex-lb store (nothing to import)`);
  if (kind !== "python")
    throw new ImportSourceError(
      `${path} is not a Python codex-lb store (no alembic_version and accounts tables)`,
    );
  return readSqliteSnapshot(path, (db) => {
    const has = new Set(tables);
    const all = (table: string, order = ""): Row[] =>
      has.has(table) ? db.all(`SELECT * FROM "${table}"${order}`) : [];
    const version = has.has("alembic_version")
      ? (db.all("SELECT version_num FROM alembic_version LIMIT 1")[0]?.version_num ?? null)
      : null;
    const users = has.has("dashboard_users") ? all("dashboard_users") : [];
    const used = new Set<string>([
      ...Object.values(WANTED),
      "dashboard_settings",
      "dashboard_users",
      "alembic_version",
    ]);
    const ignoredWithRows = tables
      .filter((t) => !used.has(t))
      .map((table) => ({ table, rows: Number(db.all(`SELECT count(*) AS n FROM "${table}"`)[0]?.n ?? 0) }))
      .filter((t) => t.rows > 0);
    return {
      alembicVersion: version === null ? null : String(version),
      accounts: all(WANTED.accounts, " ORDER BY created_at, id"),
      apiKeys: all(WANTED.apiKeys, " ORDER BY created_at, id"),
      apiKeyLimits: all(WANTED.apiKeyLimits, " ORDER BY id"),
      firewall: all(WANTED.firewall),
      sticky: all(WANTED.sticky),
      settings: has.has("dashboard_settings") ? (all("dashboard_settings", " ORDER BY id")[0] ?? null) : null,
      dashboardUsers: users,
      missingTables: [...Object.values(WANTED), "dashboard_settings"].filter((t) => !has.has(t)),
      tables,
      ignoredWithRows,
    };
  });
}
