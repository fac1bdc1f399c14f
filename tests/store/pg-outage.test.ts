/**
 * A gateway on PostgreSQL whose server goes away and comes back (a restart, a failover): on a server
 * of its own (tests/support/pg-server.ts), halted at once while one pooled connection is checked out
 * between two statements and others sit idle. node-postgres then emits `error` on each connection;
 * unhandled on a checked-out one, that was an uncaught exception. Now: no uncaught exception, one
 * log line naming the store and the cause, the statement on the held connection fails, and once the
 * server is back the next request is served and logged.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sql } from "kysely";
import { redactUrl } from "../../src/store/postgres.ts";
import { type PgServer, startPgServer } from "../support/pg-server.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let server: PgServer;
let env: ProxyEnv;
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

beforeAll(async () => {
  process.on("uncaughtException", onUncaught);
  server = await startPgServer();
  env = await startProxyEnv({
    accounts: [{ id: "a1", chatgptAccountId: "chatgpt-a1" }],
    env: { CODEX_LB_DATABASE_URL: server.url },
  });
});
afterAll(async () => {
  await env?.stop();
  server?.stop();
  process.off("uncaughtException", onUncaught);
});

const ask = () =>
  fetch(`${env.gw.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.4", input: "hi" }),
  });

const loggedRows = async () =>
  Number((await sql<{ n: number }>`select count(*) as n from request_logs`.execute(env.db)).rows[0]?.n);

const lines = (msg: string) => env.gw.logs().filter((l) => l.msg === msg);
const LOST = "PostgreSQL connection lost; the statements on it fail, later ones open a new connection";
const OPEN = "PostgreSQL connection open again";

test("the server halts under a held connection and comes back: logged once, no uncaught exception, served again", async () => {
  const first = await ask();
  expect(first.status).toBe(200);
  expect(((await first.json()) as { status: string }).status).toBe("completed");
  expect(await eventually(async () => (await loggedRows()) === 1)).toBe(true);
  // The test server commits without waiting for its log (synchronous_commit=off): a halt could lose
  // the last commits (the seeded account), which is not what is tested here.
  await sql`checkpoint`.execute(env.db);

  // One connection checked out between two statements while the server goes away.
  let halted!: () => void;
  const gate = new Promise<void>((r) => {
    halted = r;
  });
  let checkedOut!: () => void;
  const between = new Promise<void>((r) => {
    checkedOut = r;
  });
  const held = env.db.connection().execute(async (c) => {
    await sql`select 1`.execute(c);
    checkedOut();
    await gate;
    return sql`select 1`.execute(c).then(
      () => null,
      (e: unknown) => e,
    );
  });
  await between;
  server.halt();
  expect(await eventually(() => lines(LOST).length > 0)).toBe(true);
  halted();
  const heldError = await held;
  expect(heldError).toBeInstanceOf(Error);

  server.resume();
  const again = await ask();
  expect(again.status).toBe(200);
  expect(((await again.json()) as { status: string }).status).toBe("completed");
  expect(await eventually(async () => (await loggedRows()) === 2)).toBe(true);

  expect(uncaught).toEqual([]);
  const lost = lines(LOST);
  expect(lost).toHaveLength(1);
  expect(lost[0]!.store).toBe(redactUrl(server.url));
  expect(String(lost[0]!.err)).not.toBe("");
  expect(lines(OPEN).length).toBe(1);
});
