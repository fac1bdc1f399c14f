/**
 * Every migration, in order. They are imported statically so `bun build --compile` bundles them
 * into the binary. Names sort in application order (`NNNN_slug`); never rename or edit a shipped
 * one — add a new file and list it here.
 *
 * Every migration runs on SQLite and on PostgreSQL (tests/store runs both): take `blob`, `real`
 * and auto-numbered id columns from `ddl(db)` (./ddl.ts), and keep dialect-specific SQL (triggers)
 * behind `ddl(db).dialect`.
 *
 * @module
 */
import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_initial.ts";
import * as m0030 from "./0030_access.ts";
import * as m0031 from "./0031_drop_last_selected_at.ts";
import * as m0040 from "./0040_request_log_transport.ts";
import * as m0041 from "./0041_cluster.ts";
import * as m0050 from "./0050_request_log_filters.ts";

export const migrations: Readonly<Record<string, Migration>> = {
  "0001_initial": m0001,
  "0030_access": m0030,
  "0031_drop_last_selected_at": m0031,
  "0040_request_log_transport": m0040,
  "0041_cluster": m0041,
  "0050_request_log_filters": m0050,
};

export const bundledMigrations: MigrationProvider = {
  getMigrations: async () => ({ ...migrations }),
};
