/**
 * The few column types and statements that differ between SQLite and PostgreSQL. Migrations take
 * their types from here so one migration file produces the same schema on both: on SQLite exactly
 * the DDL it always produced, on PostgreSQL the nearest equivalent.
 *
 * | here      | SQLite                               | PostgreSQL                        |
 * |-----------|--------------------------------------|-----------------------------------|
 * | `blob`    | `blob`                               | `bytea`                           |
 * | `real`    | `real` (8 bytes)                     | `double precision` (not float4)   |
 * | `serialId`| `integer primary key autoincrement`  | `bigserial primary key`           |
 *
 * Triggers are the one place with dialect-specific SQL (PostgreSQL needs a trigger function).
 *
 * @module
 */
import { type ColumnDefinitionBuilder, type Kysely, PostgresAdapter } from "kysely";

export type SqlDialect = "sqlite" | "postgres";

// biome-ignore lint/suspicious/noExplicitAny: migrations work on Kysely<any>.
export function dialectOf(db: Kysely<any>): SqlDialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? "postgres" : "sqlite";
}

export interface DdlTypes {
  readonly dialect: SqlDialect;
  readonly blob: "blob" | "bytea";
  readonly real: "real" | "double precision";
  /** The type of an auto-numbered primary key column. */
  readonly serialId: "integer" | "bigserial";
  /** Its column definition (primary key, and autoincrement on SQLite). */
  readonly serialIdDef: (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
}

// biome-ignore lint/suspicious/noExplicitAny: migrations work on Kysely<any>.
export function ddl(db: Kysely<any>): DdlTypes {
  return dialectOf(db) === "postgres"
    ? {
        dialect: "postgres",
        blob: "bytea",
        real: "double precision",
        serialId: "bigserial",
        serialIdDef: (c) => c.primaryKey(),
      }
    : {
        dialect: "sqlite",
        blob: "blob",
        real: "real",
        serialId: "integer",
        serialIdDef: (c) => c.primaryKey().autoIncrement(),
      };
}
