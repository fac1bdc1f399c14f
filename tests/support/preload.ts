// Test preload: keeps test runs quiet and hermetic.
import { afterAll } from "bun:test";
import { stopTestPostgres } from "./postgres.ts";

process.env.TZ = "UTC";

// The throw-away PostgreSQL server (started by the first test that needs one) ends with the run.
afterAll(() => stopTestPostgres(), 60_000);
