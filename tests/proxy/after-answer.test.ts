/**
 * What only reports a finished request (its access line, metrics and span) runs in the turn after
 * the answer's last bytes were written (`ProxyContext.afterAnswer`), so the end of an answer does not
 * wait for it; its log row (response owner, the key's reservation settled) and `request.completed`
 * still come before the client sees the end; a gateway that stops runs what is still waiting first.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { AppDeps } from "../../src/core/deps.ts";
import { createLogger } from "../../src/core/logging.ts";
import { proxyContext } from "../../src/proxy/context.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

function context() {
  const lines: string[] = [];
  const log = createLogger("info", { write: (l: string) => void lines.push(l) });
  const deps = { log, requestLogs: {}, settings: { upstreamBaseUrl: "http://127.0.0.1:9/backend-api" } };
  return { ctx: proxyContext(deps as unknown as AppDeps), lines };
}

describe("afterAnswer", () => {
  test("runs in the next turn of the event loop, after this turn's microtasks, in order", async () => {
    const { ctx } = context();
    const ran: string[] = [];
    ctx.afterAnswer(() => ran.push("a"));
    ctx.afterAnswer(() => ran.push("b"));
    queueMicrotask(() => ran.push("microtask"));
    await Promise.resolve();
    expect(ran).toEqual(["microtask"]);
    await new Promise<void>((r) => setImmediate(r));
    expect(ran).toEqual(["microtask", "a", "b"]);
  });

  test("a throw is logged and the rest still run", async () => {
    const { ctx, lines } = context();
    const ran: string[] = [];
    ctx.afterAnswer(() => {
      throw new Error("boom");
    });
    ctx.afterAnswer(() => ran.push("after"));
    await new Promise<void>((r) => setImmediate(r));
    expect(ran).toEqual(["after"]);
    expect(lines.join("")).toContain("reporting a finished request failed");
    expect(lines.join("")).toContain("boom");
  });

  test("flushDeferred runs what waits at once, and only once", async () => {
    const { ctx } = context();
    const ran: string[] = [];
    ctx.afterAnswer(() => ran.push("a"));
    ctx.flushDeferred();
    expect(ran).toEqual(["a"]);
    await new Promise<void>((r) => setImmediate(r));
    expect(ran).toEqual(["a"]);
    ctx.afterAnswer(() => ran.push("b"));
    await new Promise<void>((r) => setImmediate(r));
    expect(ran).toEqual(["a", "b"]);
  });
});

describe("over HTTP", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "a1", chatgptAccountId: "chatgpt-a1" }] });
  });
  afterAll(async () => {
    await env?.stop();
  });

  test("a streamed answer's log row is queued before its end reaches the client, every time", async () => {
    const added = new Set<string>();
    env.gw.running.gateway.requestLogs.onAdded((row) => added.add(row.request_id));
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${env.gw.url}/backend-api/codex/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
      });
      expect(await res.text()).toContain("response.completed");
      expect(added.has(res.headers.get("x-request-id")!)).toBe(true);
    }
  });

  test("a stop right after a streamed answer still writes its access line and its log row", async () => {
    const res = await fetch(`${env.gw.url}/backend-api/codex/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-5.2", input: "hi", stream: true, store: false, instructions: "" }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("response.completed");
    const requestId = res.headers.get("x-request-id");
    expect(requestId).not.toBeNull();
    // Stopping at once: what still waits for its turn runs before anything stops.
    await env.gw.running.shutdown();
    const access = env.gw.logs().find((l) => l.msg === "request" && l.requestId === requestId);
    expect(access?.outcome).toBe("success");
    // The store is closed: its file, as the stopped gateway left it.
    const db = new Database(join(env.gw.dataDir, "store.db"), { readonly: true });
    const rows = db.query("SELECT request_id, status FROM request_logs WHERE request_id = ?").all(requestId!);
    db.close();
    expect(rows).toEqual([{ request_id: requestId!, status: "success" }]);
  });
});
