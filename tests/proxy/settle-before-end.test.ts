/**
 * A client never sees the end of its answer before the request's settle is committed: the API key's
 * reservation holds the request's real usage in the store by then, so a `kill -9` right after a
 * client had its whole answer cannot leave the estimate behind (tests/security/crash.test.ts checks
 * the crash itself). Each answer here is slowed at its settle: when its log row is queued, the test
 * holds the store's connection (an open transaction) for a while, so the settle's group commit
 * waits; the moment the client sees the end, another connection reads the file. Before the fix the
 * end went out one turn before the commit, and the file had the unsettled estimate at that moment.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { jsonInit } from "../support/admin.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

let env: ProxyEnv;
let key: string;
let keyId: string;
/** The request id of the last keyed log row queued. */
let lastRequestId = "";
/** Ends the hold on the store's connection taken for the last row (if still held). */
let release: () => void = () => {};

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "a1", chatgptAccountId: "chatgpt-a1" }] });
  const res = await fetch(
    `${env.gw.url}/api/api-keys`,
    jsonInit("POST", {
      name: "settle",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1_000_000_000 }],
    }),
  );
  ({ key, id: keyId } = (await res.json()) as { key: string; id: string });
  await fetch(`${env.gw.url}/api/settings/access`, jsonInit("PUT", { apiKeyAuthEnabled: true }));
  // The seam: once a keyed row is queued (its settle asked for), the store's one connection is held
  // in a transaction, so the settle's commit cannot run until it ends (at the client's end, or after
  // a while when the end waits for the commit, as it must).
  env.gw.running.gateway.requestLogs.onAdded((row) => {
    if (row.api_key_id !== keyId) return;
    lastRequestId = row.request_id;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
      setTimeout(resolve, 50);
    });
    void env.db.transaction().execute(() => gate);
  });
});
afterAll(async () => {
  release();
  await env?.stop();
});

/** The request's settle is in the file: its reservation settled, or its log row written (then it is gone). */
function settledInFile(requestId: string): boolean {
  const db = new Database(join(env.gw.dataDir, "store.db"), { readonly: true });
  try {
    const r = db.query("SELECT settled FROM api_key_reservations WHERE request_id = ?").get(requestId) as {
      settled: number;
    } | null;
    const logged = db.query("SELECT 1 AS one FROM request_logs WHERE request_id = ?").get(requestId);
    return r?.settled === 1 || logged !== null;
  } finally {
    db.close();
  }
}

/** Reads a body to its end; `atTerminal` runs when the bytes read so far first hold `terminal`. */
async function readToEnd(res: Response, terminal: string, atTerminal: () => void): Promise<string> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = "";
  let seen = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += dec.decode(value, { stream: true });
    if (!seen && text.includes(terminal)) {
      seen = true;
      atTerminal();
    }
  }
}

const post = (path: string, body: Record<string, unknown>) =>
  fetch(`${env.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "gpt-5.4", ...body }),
  });

describe("the end of an answer waits for its settle's commit", () => {
  test("an SSE answer that arrives whole: its terminal event comes with its end, after the commit", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await post("/backend-api/codex/responses", { input: "hi", stream: true });
      let atTerminal = null as boolean | null;
      const text = await readToEnd(res, "response.completed", () => {
        atTerminal = settledInFile(lastRequestId);
      });
      const atEnd = settledInFile(lastRequestId);
      release();
      expect(text).toContain("response.completed");
      expect(lastRequestId).toBe(res.headers.get("x-request-id")!);
      expect(atTerminal).toBe(true);
      expect(atEnd).toBe(true);
    }
  });

  test("an SSE answer in several chunks: its end (the close) comes after the commit", async () => {
    env.fake.script("chatgpt-a1", { kind: "slow", text: "slow answer", delayMs: 20 });
    const res = await post("/v1/responses", { input: "hi", stream: true });
    const text = await res.text();
    const atEnd = settledInFile(lastRequestId);
    release();
    expect(text).toContain("response.completed");
    expect(lastRequestId).toBe(res.headers.get("x-request-id")!);
    expect(atEnd).toBe(true);
  });

  test("a Chat Completions stream: its last bytes (`[DONE]`) and end come after the commit", async () => {
    const res = await post("/v1/chat/completions", {
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let atDone = null as boolean | null;
    const text = await readToEnd(res, "[DONE]", () => {
      atDone = settledInFile(lastRequestId);
    });
    release();
    expect(text).toContain("[DONE]");
    expect(atDone).toBe(true);
  });

  test("an assembled JSON answer comes after the commit", async () => {
    const res = await post("/v1/responses", { input: "hi" });
    const json = (await res.json()) as { status?: string };
    const atEnd = settledInFile(lastRequestId);
    release();
    expect(res.status).toBe(200);
    expect(json.status).toBe("completed");
    expect(atEnd).toBe(true);
  });

  test("a compaction's answer comes after the commit", async () => {
    env.fake.script("chatgpt-a1", { kind: "compaction", encryptedContent: "opaque" });
    const res = await post("/v1/responses/compact", { input: [{ role: "user", content: "hi" }] });
    await res.json();
    const atEnd = settledInFile(lastRequestId);
    release();
    expect(res.status).toBe(200);
    expect(atEnd).toBe(true);
  });

  test("a WebSocket turn's terminal frame comes after the commit", async () => {
    const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"), {
      authorization: `Bearer ${key}`,
    });
    try {
      for (let i = 0; i < 3; i++) {
        const frames = await ws.turn({
          type: "response.create",
          model: "gpt-5.4",
          instructions: "",
          input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] }],
        });
        const atTerminal = settledInFile(lastRequestId);
        release();
        expect(frames.at(-1)!.type).toBe("response.completed");
        expect(atTerminal).toBe(true);
      }
    } finally {
      ws.close();
    }
  });
});
