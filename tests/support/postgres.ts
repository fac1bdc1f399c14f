/**
 * PostgreSQL for tests. `CODEX_LB_TEST_DATABASE_URL` names a server to use (`.ci/run` starts one);
 * otherwise the first caller starts a throw-away server (tests/support/pg-server.ts), stopped when
 * the test run ends (the preload's afterAll, and process exit as a fallback). Every caller gets a
 * database of its own (`CREATE DATABASE`), so test files never see each other's rows and may run in
 * parallel.
 *
 * @module
 */
import pg from "pg";
import { type PgServer, startPgServer } from "./pg-server.ts";

let server: Promise<PgServer> | null = null;
let counter = 0;

function serverUrl(): Promise<string> {
  const given = process.env.CODEX_LB_TEST_DATABASE_URL?.trim();
  if (given) return Promise.resolve(given);
  if (!server) {
    server = startPgServer();
    server.then(
      (s) => process.once("exit", () => s.stop()),
      () => {},
    );
  }
  return server.then((s) => s.url);
}

/** Stops the server this process started, if any (called once after every test). */
export async function stopTestPostgres(): Promise<void> {
  if (!server) return;
  const s = await server.catch(() => null);
  server = null;
  s?.stop();
}

/** A new, empty database on the test server; its `postgres://` URL. */
export async function createTestDatabase(label = "t"): Promise<string> {
  const base = await serverUrl();
  const name = `${label
    .replace(/[^a-z0-9_]/gi, "_")
    .toLowerCase()
    .slice(0, 30)}_${process.pid}_${++counter}_${Math.floor(Math.random() * 1e6)}`;
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}
