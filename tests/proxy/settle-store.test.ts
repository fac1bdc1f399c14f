/**
 * The end of an answer waits for its settle's commit (tests/proxy/settle-before-end.test.ts holds the
 * SQLite store's connection): here on each store, PostgreSQL included, what that wait does when the
 * store does not cooperate.
 * - PostgreSQL: the settle's UPDATE waits on a row lock the test holds; the client's end comes only
 *   once it is committed.
 * - SQLite and PostgreSQL: the settle's commit fails (a trigger refuses the UPDATE, as a full disk or
 *   a lost server would): every answer still ends, whole, and the reservation keeps its estimate.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import pg from "pg";
import { jsonInit } from "../support/admin.ts";
import { createTestDatabase } from "../support/postgres.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

interface Bench {
  env: ProxyEnv;
  key: string;
  keyId: string;
  /** SQL on the store from a connection of the test's own. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

async function bench(kind: "sqlite" | "postgres"): Promise<Bench> {
  const url = kind === "postgres" ? await createTestDatabase("settle_store") : null;
  const env = await startProxyEnv({
    accounts: [{ id: "a1", chatgptAccountId: "chatgpt-a1" }],
    ...(url ? { env: { CODEX_LB_DATABASE_URL: url } } : {}),
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
      b = await bench(kind);
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
