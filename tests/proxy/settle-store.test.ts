/**
 * The end of an answer waits for its settle's commit (tests/proxy/settle-before-end.test.ts holds the
 * SQLite store's connection): here on each store, PostgreSQL included, what that wait does when the
 * store does not cooperate.
 * - PostgreSQL: the settle's UPDATE waits on a row lock the test holds; the client's end comes only
 *   once it is committed.
 * - SQLite and PostgreSQL: the settle's commit fails (a trigger refuses the UPDATE, as a full disk or
 *   a lost server would): every answer still ends, whole, and the reservation keeps its estimate.
 * - SQLite and PostgreSQL: the settle is held past `CODEX_LB_SETTLE_WAIT_MS` (a row lock; the store's
 *   connection held by a transaction): the answer ends then, whole, with a log line; the settle lands
 *   once the store lets it, and the request counts once. PostgreSQL: a lock held past twice the bound
 *   cancels the settle (its connection is free again); the log row then counts the request, once.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { FakeClock } from "../../src/core/clock.ts";
import { jsonInit } from "../support/admin.ts";
import { createTestDatabase } from "../support/postgres.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

interface Bench {
  env: ProxyEnv;
  key: string;
  keyId: string;
  /** SQL on the store from a connection of the test's own. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/**
 * `clock`: the gateway's (a FakeClock: the bound on a settle's wait passes when the test says);
 * `settleWaitMs`: `CODEX_LB_SETTLE_WAIT_MS`; `logFlushMs`: `CODEX_LB_REQUEST_LOG_FLUSH_MS`.
 */
async function bench(
  kind: "sqlite" | "postgres",
  opts: { clock?: FakeClock; settleWaitMs?: number; logFlushMs?: number } = {},
): Promise<Bench> {
  const url = kind === "postgres" ? await createTestDatabase("settle_store") : null;
  const env = await startProxyEnv({
    accounts: [{ id: "a1", chatgptAccountId: "chatgpt-a1" }],
    env: {
      ...(url ? { CODEX_LB_DATABASE_URL: url } : {}),
      ...(opts.settleWaitMs ? { CODEX_LB_SETTLE_WAIT_MS: String(opts.settleWaitMs) } : {}),
      ...(opts.logFlushMs ? { CODEX_LB_REQUEST_LOG_FLUSH_MS: String(opts.logFlushMs) } : {}),
    },
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const res = await fetch(
    `${env.gw.url}/api/api-keys`,
    jsonInit("POST", {
      name: "settle",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1_000_000_000 }],
    }),
  );
  const { key, id: keyId } = (await res.json()) as { key: string; id: string };
  await fetch(`${env.gw.url}/api/settings/access`, jsonInit("PUT", { apiKeyAuthEnabled: true }));
  if (url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return {
      env,
      key,
      keyId,
      sql: async (text, params) => (await client.query(text, params)).rows,
      stop: async () => {
        await client.end();
        await env.stop();
      },
    };
  }
  const file = join(env.gw.dataDir, "store.db");
  return {
    env,
    key,
    keyId,
    sql: async (text, params = []) => {
      const db = new Database(file);
      try {
        return db.query(text).all(...(params as string[])) as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
    stop: () => env.stop(),
  };
}

const post = (b: Bench, path: string, body: Record<string, unknown>) =>
  fetch(`${b.env.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${b.key}` },
    body: JSON.stringify({ model: "gpt-5.4", ...body }),
  });

/** The request's settle is in the store: its reservation settled, or its log row written (then it is gone). */
async function settledInStore(b: Bench, requestId: string): Promise<boolean> {
  const r = await b.sql("SELECT settled FROM api_key_reservations WHERE request_id = $1", [requestId]);
  const logged = await b.sql("SELECT 1 AS one FROM request_logs WHERE request_id = $1", [requestId]);
  return Number(r[0]?.settled) === 1 || logged.length > 0;
}

describe("PostgreSQL: the end of an answer waits for its settle's commit", () => {
  let b: Bench;
  beforeAll(async () => {
    b = await bench("postgres");
  });
  afterAll(async () => {
    await b?.stop();
  });

  /**
   * Runs `request` with the upstream paused mid-answer; once the request's reservation is in the
   * store, the test locks its row, lets the answer finish and commits the lock a little later. The
   * settle's UPDATE waits for the lock; `request` reads the answer to its end.
   */
  async function withRowLocked(
    request: () => Promise<string>,
  ): Promise<{ requestId: string; atEnd: boolean }> {
    let resume!: () => void;
    const rest = new Promise<void>((r) => {
      resume = r;
    });
    b.env.fake.script("chatgpt-a1", { kind: "slow", text: "slow answer", rest });
    const answer = request();
    await b.sql("BEGIN");
    let locked: Record<string, unknown>[] = [];
    // The reservation is committed before the request goes upstream, and cannot be settled before
    // `rest` lets the answer end.
    while (locked.length === 0) {
      locked = await b.sql(
        "SELECT request_id FROM api_key_reservations WHERE api_key_id = $1 AND settled = 0 FOR UPDATE",
        [b.keyId],
      );
      if (locked.length === 0) await Bun.sleep(2);
    }
    resume();
    setTimeout(() => void b.sql("COMMIT"), 50);
    const requestId = await answer;
    return { requestId, atEnd: await settledInStore(b, requestId) };
  }

  test("an SSE answer closes after the commit", async () => {
    const { requestId, atEnd } = await withRowLocked(async () => {
      const res = await post(b, "/backend-api/codex/responses", { input: "hi", stream: true });
      expect(await res.text()).toContain("response.completed");
      return res.headers.get("x-request-id")!;
    });
    expect(requestId).not.toBe("");
    expect(atEnd).toBe(true);
  });

  test("an assembled JSON answer comes after the commit", async () => {
    const { atEnd } = await withRowLocked(async () => {
      const res = await post(b, "/v1/responses", { input: "hi" });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { status: string }).status).toBe("completed");
      return res.headers.get("x-request-id")!;
    });
    expect(atEnd).toBe(true);
  });
});

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`${kind}: an answer still ends when its settle's commit fails`, () => {
    let b: Bench;
    beforeAll(async () => {
      // No log rows are written while the requests run: a written row drops its reservation, and on
      // PostgreSQL (pooled connections) that DELETE can commit before the settle's UPDATE runs, which
      // then matches no row and succeeds: a failure fewer than the requests (seen once under load).
      b = await bench(kind, { logFlushMs: 600_000 });
      // Every settle (an UPDATE of a reservation) fails, as with a full disk or a lost server.
      if (kind === "sqlite") {
        await b.sql(
          "CREATE TRIGGER refuse_settle BEFORE UPDATE ON api_key_reservations BEGIN SELECT RAISE(ABORT, 'settle refused'); END",
        );
      } else {
        await b.sql(
          "CREATE FUNCTION refuse_settle() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'settle refused'; END $$ LANGUAGE plpgsql",
        );
        await b.sql(
          "CREATE TRIGGER refuse_settle BEFORE UPDATE ON api_key_reservations FOR EACH ROW EXECUTE FUNCTION refuse_settle()",
        );
      }
    });
    afterAll(async () => {
      await b?.stop();
    });

    /** The warnings of failed settles logged so far. */
    const failedSettles = () =>
      b.env.gw.logs().filter((l) => String(l.msg).startsWith("settling an API-key reservation failed"))
        .length;

    test("SSE, Chat stream, JSON, compaction and WebSocket turns end whole; each failed settle is logged", async () => {
      const before = failedSettles();
      const sse = await post(b, "/backend-api/codex/responses", { input: "hi", stream: true });
      expect(await sse.text()).toContain("response.completed");
      b.env.fake.script("chatgpt-a1", { kind: "slow", text: "slow answer", delayMs: 5 });
      const chunked = await post(b, "/v1/responses", { input: "hi", stream: true });
      expect(await chunked.text()).toContain("response.completed");
      const chat = await post(b, "/v1/chat/completions", {
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      expect((await chat.text()).trimEnd().endsWith("data: [DONE]")).toBe(true);
      const json = await post(b, "/v1/responses", { input: "hi" });
      expect(json.status).toBe(200);
      expect(((await json.json()) as { status: string }).status).toBe("completed");
      b.env.fake.script("chatgpt-a1", { kind: "compaction", encryptedContent: "opaque" });
      const compact = await post(b, "/v1/responses/compact", { input: [{ role: "user", content: "hi" }] });
      expect(compact.status).toBe(200);
      expect(((await compact.json()) as { object: string }).object).toBe("response.compaction");
      const ws = await openWs(wsUrl(b.env.gw.url, "/backend-api/codex/responses"), {
        authorization: `Bearer ${b.key}`,
      });
      try {
        for (let i = 0; i < 2; i++) {
          const frames = await ws.turn({
            type: "response.create",
            model: "gpt-5.4",
            instructions: "",
            input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] }],
          });
          expect(frames.at(-1)!.type).toBe("response.completed");
        }
      } finally {
        ws.close();
      }
      // Seven requests, seven settles refused, each logged before its answer ended.
      expect(failedSettles() - before).toBe(7);
    });
  });
}

/** An answer with the upstream's own per-response id and time replaced (the only bytes that differ between two runs). */
const sameBytes = (text: string) =>
  text.replace(/resp_fake\d+/g, "resp_fake").replace(/"created_at":\d+/g, '"created_at":0');

const SLOW_SETTLE = "settling an API-key reservation takes longer than CODEX_LB_SETTLE_WAIT_MS";
const LATE_SETTLE = "a late settle of an API-key reservation committed";

/** The key's usage as counted in the store: hour buckets (logged rows) and reservations left. */
async function counted(
  b: Bench,
): Promise<{ requests: number; output: number; reservations: number; logged: number }> {
  const [h] = await b.sql(
    "SELECT coalesce(sum(requests), 0) AS requests, coalesce(sum(output_tokens), 0) AS output FROM api_key_usage_hourly WHERE api_key_id = $1",
    [b.keyId],
  );
  const [r] = await b.sql("SELECT count(*) AS n FROM api_key_reservations WHERE api_key_id = $1", [b.keyId]);
  const [l] = await b.sql(
    "SELECT coalesce(sum(output_tokens), 0) AS output FROM request_logs WHERE api_key_id = $1",
    [b.keyId],
  );
  return {
    requests: Number(h?.requests),
    output: Number(h?.output),
    reservations: Number(r?.n),
    logged: Number(l?.output),
  };
}

/**
 * Eventually the key's usage in the store is `requests` requests, each counted once: by its log row
 * (hour buckets equal the logged tokens) with no reservation left.
 */
function countedOnce(b: Bench, requests: number): Promise<boolean> {
  return eventually(async () => {
    const c = await counted(b);
    return c.requests === requests && c.reservations === 0 && c.output === c.logged && c.logged > 0;
  });
}

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`${kind}: a settle held past CODEX_LB_SETTLE_WAIT_MS`, () => {
    let b: Bench;
    const clock = new FakeClock(Date.now());
    /** Request ids whose log row is queued (their settle asked for). */
    const queued = new Set<string>();
    beforeAll(async () => {
      b = await bench(kind, { clock });
      b.env.gw.running.gateway.requestLogs.onAdded((row) => void queued.add(row.request_id));
    });
    /** Lets the held settle go (the test does; again here should it fail midway). */
    let unblock = async () => {};
    afterAll(async () => {
      await unblock();
      await b?.stop();
    });

    test("the answer ends whole once the bound passes (logged); the settle lands later and counts once", async () => {
      const stream = () => post(b, "/backend-api/codex/responses", { input: "hi", stream: true });
      // The same answer with nothing in the way.
      b.env.fake.script("chatgpt-a1", { kind: "slow", text: "hello there" });
      const reference = sameBytes(await (await stream()).text());
      let resume!: () => void;
      const rest = new Promise<void>((r) => {
        resume = r;
      });
      b.env.fake.script("chatgpt-a1", { kind: "slow", text: "hello there", rest });
      const res = await stream();
      const requestId = res.headers.get("x-request-id")!;
      let ended = false;
      const answer = res.text().then((t) => {
        ended = true;
        return t;
      });
      await eventually(
        async () =>
          (await b.sql("SELECT 1 FROM api_key_reservations WHERE request_id = $1", [requestId])).length > 0,
      );
      // What holds the settle: on PostgreSQL a row lock on the reservation from another connection;
      // on SQLite an open transaction on the store's connection (as a long admin write would).
      if (kind === "postgres") {
        await b.sql("BEGIN");
        await b.sql("SELECT 1 FROM api_key_reservations WHERE request_id = $1 FOR UPDATE", [requestId]);
        unblock = async () => void (await b.sql("COMMIT"));
      } else {
        let open!: () => void;
        let end!: () => void;
        const opened = new Promise<void>((r) => {
          open = r;
        });
        const held = b.env.db.transaction().execute(async () => {
          open();
          await new Promise<void>((r) => {
            end = r;
          });
        });
        await opened;
        unblock = async () => {
          end();
          await held;
        };
      }
      resume();
      if (kind === "postgres")
        await eventually(
          async () =>
            (
              await b.sql(
                // pg_locks, not pg_stat_activity: the latter is a snapshot kept for the test's open transaction.
                "SELECT 1 FROM pg_locks WHERE NOT granted",
              )
            ).length > 0,
        );
      // The upstream's end is in and the settle asked for (its log row queued), but held: the
      // client's end waits for it.
      expect(await eventually(() => queued.has(requestId))).toBe(true);
      await Bun.sleep(50);
      expect(ended).toBe(false);
      await clock.advance(b.env.gw.running.gateway.settings.settleWaitMs);
      const text = await answer;
      expect(sameBytes(text)).toBe(reference);
      const slow = b.env.gw.logs().filter((l) => String(l.msg).startsWith(SLOW_SETTLE));
      expect(slow).toHaveLength(1);
      await unblock();
      expect(await eventually(() => b.env.gw.logs().some((l) => l.msg === LATE_SETTLE))).toBe(true);
      // The log rows are flushed (on the gateway's clock): both requests count once, nothing is left reserved.
      await clock.advance(1000);
      expect(await countedOnce(b, 2)).toBe(true);
    });
  });
}

/**
 * PostgreSQL: a streamed keyed request whose settle waits for a row lock: once its reservation is
 * in the store, the test's connection locks its row in an open transaction (the caller commits it),
 * then the answer finishes. The response, its body not yet read.
 */
async function settleLocked(b: Bench): Promise<Response> {
  let resume!: () => void;
  const rest = new Promise<void>((r) => {
    resume = r;
  });
  b.env.fake.script("chatgpt-a1", { kind: "slow", text: "hello there", rest });
  const res = await post(b, "/backend-api/codex/responses", { input: "hi", stream: true });
  const requestId = res.headers.get("x-request-id")!;
  expect(
    await eventually(
      async () =>
        (await b.sql("SELECT 1 FROM api_key_reservations WHERE request_id = $1", [requestId])).length > 0,
    ),
  ).toBe(true);
  await b.sql("BEGIN");
  await b.sql("SELECT 1 FROM api_key_reservations WHERE request_id = $1 FOR UPDATE", [requestId]);
  resume();
  return res;
}

describe("postgres: a row lock held past twice CODEX_LB_SETTLE_WAIT_MS", () => {
  let b: Bench;
  beforeAll(async () => {
    // On the real clock, with a short bound: the settle is cancelled after 200 to 300 ms.
    b = await bench("postgres", { settleWaitMs: 100 });
  });
  afterAll(async () => {
    await b?.stop();
  });

  test("cancels the settle (logged, its connection free again); the request still counts once", async () => {
    const res = await settleLocked(b);
    try {
      expect(await res.text()).toContain("response.completed");
      // The server ended the settle's statement (so its pooled connection is free), the lock still held.
      expect(await eventually(() => b.env.gw.logs().some(cancelled))).toBe(true);
    } finally {
      await b.sql("COMMIT");
    }
    // The log row is written and its reservation dropped: the request counts once, by its row.
    expect(await countedOnce(b, 1)).toBe(true);
  });
});

/** The log line of a settle whose statement the server cancelled. */
const cancelled = (l: Record<string, unknown>) =>
  String(l.msg).startsWith("settling an API-key reservation failed") &&
  /canceling statement/.test(String(l.err));

describe("postgres: a settle statement is cancelled only once it has run twice CODEX_LB_SETTLE_WAIT_MS", () => {
  const BOUND = 1500;
  let b: Bench;
  const clock = new FakeClock(Date.now());
  beforeAll(async () => {
    // The gateway's checks run when the test moves its clock; the statement's age is the server's.
    b = await bench("postgres", { clock, settleWaitMs: BOUND });
  });
  afterAll(async () => {
    await b?.stop();
  });

  /** How long the settle's UPDATE has run on the server, in ms (null: not running). */
  async function settleAge(): Promise<number | null> {
    // On the gateway's pool: the test's own connection has a transaction open (a fixed snapshot).
    const { rows } = await sql<{ ms: number }>`
      select extract(epoch from clock_timestamp() - query_start) * 1000 as ms from pg_stat_activity
      where state = 'active' and query like 'update "api_key_reservations"%'`.execute(b.env.db);
    return rows[0] ? Number(rows[0].ms) : null;
  }

  test("a check at twice the bound leaves one that has run less; the next check cancels it", async () => {
    const res = await settleLocked(b);
    try {
      // The settle's UPDATE waits for the lock, and has run longer than the bound (the server's time).
      expect(await eventually(async () => ((await settleAge()) ?? 0) > BOUND, 3 * BOUND)).toBe(true);
      await clock.advance(BOUND);
      expect(await res.text()).toContain("response.completed");
      // Twice the bound on the gateway's clock: the check runs, but the statement has run less than
      // twice the bound (cancelling what has run past one bound would cancel it now).
      await clock.advance(BOUND);
      expect(await eventually(async () => ((await settleAge()) ?? 0) > 2 * BOUND, 3 * BOUND)).toBe(true);
      expect(b.env.gw.logs().some(cancelled)).toBe(false);
      // The next check, one bound later, cancels it.
      await clock.advance(BOUND);
      expect(await eventually(() => b.env.gw.logs().some(cancelled))).toBe(true);
    } finally {
      await b.sql("COMMIT");
    }
    await clock.advance(1000);
    expect(await countedOnce(b, 1)).toBe(true);
  });
});
