/**
 * The Responses WebSocket end to end, with a plain WebSocket client against the gateway and the
 * fake upstream speaking the upstream WebSocket protocol: turns, continuations on the same upstream
 * socket, pinning and failover, error frames, limits, and the request log.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, type WsClient, wsUrl } from "../support/ws-client.ts";

type Json = Record<string, unknown>;

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "w1" }, { id: "w2" }] });
});
afterAll(async () => {
  await env.stop();
});
beforeEach(async () => {
  // Every test starts with both accounts usable.
  await env.gw.running.gateway.services.apply(
    ["w1", "w2"].map((accountId) => ({ type: "account.reactivate", accountId, reason: "test" }) as const),
    { source: "test" },
  );
});

const user = (text: string) => ({
  type: "message",
  role: "user",
  content: [{ type: "input_text", text }],
});
const create = (input: unknown[], extra: Json = {}) => ({
  type: "response.create",
  model: "gpt-5.2",
  instructions: "be brief",
  input,
  ...extra,
});
const open = (headers: Record<string, string> = {}, path = "/backend-api/codex/responses") =>
  openWs(wsUrl(env.gw.url, path), headers);
const responseOf = (frames: Json[]) => frames.at(-1)!.response as Json;
const textOf = (frames: Json[]) =>
  frames
    .filter((f) => f.type === "response.output_text.delta")
    .map((f) => f.delta)
    .join("");

describe("Responses WebSocket", () => {
  test("many turns on one socket, events as text frames, one upstream socket, log rows say websocket", async () => {
    env.fake.script(
      "chatgpt-w1",
      { kind: "text", text: "first answer" },
      { kind: "text", text: "second answer" },
    );
    const connsBefore = env.fake.connections.length;
    const ws = await open();
    const t1 = await ws.turn(create([user("one")]));
    expect(t1[0]!.type).toBe("response.created");
    expect(t1.at(-1)!.type).toBe("response.completed");
    expect(textOf(t1)).toBe("first answer");
    const t2 = await ws.turn(create([user("two")]));
    expect(textOf(t2)).toBe("second answer");
    expect(env.fake.connections.length).toBe(connsBefore + 1);
    const conn = env.fake.connections.at(-1)!;
    expect(conn.chatgptAccountId).toBe("chatgpt-w1");
    expect(conn.headers.get("openai-beta")).toContain("responses_websockets=2026-02-06");
    expect(conn.headers.get("authorization")).toBe(`Bearer ${env.tokens.get("w1")!.accessToken}`);
    ws.close();
    const ids = [responseOf(t1).id, responseOf(t2).id] as string[];
    const rows = await eventually(async () => {
      const r = await env.db.selectFrom("request_logs").selectAll().where("response_id", "in", ids).execute();
      return r.length === 2 ? r : null;
    });
    for (const r of rows!) {
      expect(r).toMatchObject({
        transport: "websocket",
        upstream_transport: "websocket",
        account_id: "w1",
        status: "success",
        endpoint: "/backend-api/codex/responses",
      });
    }
  });
});
