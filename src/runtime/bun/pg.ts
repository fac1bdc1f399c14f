/**
 * node-postgres (`pg`), loaded on first use: a gateway on SQLite never loads it (its modules cost
 * about 3.6 MB of resident memory). A `require` of a literal name, so `bun build --compile` still
 * bundles it.
 *
 * @module
 */
import type pg from "pg";

let pgModule: typeof pg | undefined;

/** The `pg` module, required the first time it is asked for. */
export function loadPg(): typeof pg {
  pgModule ??= require("pg") as typeof pg;
  return pgModule;
}
