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
import * as m0042 from "./0042_stream_leases.ts";
import * as m0070 from "./0070_retention.ts";
import * as m0071 from "./0071_stream_lease_function.ts";
import * as m0072 from "./0072_login_attempts.ts";
import * as m0080 from "./0080_response_owners.ts";
import * as m0090 from "./0090_request_log_filters.ts";
import * as m0095 from "./0095_api_key_reservations.ts";
import * as m0096 from "./0096_request_log_queue_ms.ts";
import * as m0097 from "./0097_request_log_kind.ts";
import * as m0098 from "./0098_api_key_reservations_by_key.ts";

export const migrations: Readonly<Record<string, Migration>> = {
  "0001_initial": m0001,
  "0030_access": m0030,
  "0031_drop_last_selected_at": m0031,
  "0040_request_log_transport": m0040,
  "0041_cluster": m0041,
  "0042_stream_leases": m0042,
  "0070_retention": m0070,
  "0071_stream_lease_function": m0071,
  "0072_login_attempts": m0072,
  "0080_response_owners": m0080,
  "0090_request_log_filters": m0090,
  "0095_api_key_reservations": m0095,
  "0096_request_log_queue_ms": m0096,
  "0097_request_log_kind": m0097,
  "0098_api_key_reservations_by_key": m0098,
};

export const bundledMigrations: MigrationProvider = {
  getMigrations: async () => ({ ...migrations }),
};
