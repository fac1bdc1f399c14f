/**
 * The Responses WebSocket end to end, with a plain WebSocket client against the gateway and the
 * fake upstream speaking the upstream WebSocket protocol: turns, continuations on the same upstream
 * socket, pinning and failover, error frames, limits, and the request log.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

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
    // One access line per turn, with the account and the tokens.
    const lines = env.gw
      .logs()
      .filter((l) => l.msg === "request" && l.method === "WS" && ids.length > 0 && l.accountId === "w1");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatchObject({
      transport: "websocket",
      upstreamTransport: "websocket",
      outcome: "success",
      inputTokens: 4,
      path: "/backend-api/codex/responses",
    });
  });

  test("a continuation with only new input reaches the same upstream socket", async () => {
    env.fake.script("chatgpt-w1", { kind: "text", text: "a" }, { kind: "text", text: "b" });
    const ws = await open();
    const t1 = await ws.turn(create([user("one")]));
    const id = responseOf(t1).id as string;
    const before = env.fake.requests.length;
    const t2 = await ws.turn(create([user("two")], { previous_response_id: id }));
    expect(t2.at(-1)!.type).toBe("response.completed");
    const up = env.fake.requests.slice(before);
    expect(up.length).toBe(1);
    expect(up[0]!.body.previous_response_id).toBe(id);
    expect(up[0]!.body.input).toEqual([user("two")]);
    expect(up[0]!.connection).toBe(env.fake.requests[before - 1]!.connection);
    ws.close();
  });

  test("the fake upstream refuses a continuation on any other connection (as the backend does)", async () => {
    env.fake.script("chatgpt-w1", { kind: "text", text: "a" });
    const a = await open();
    const t1 = await a.turn(create([user("one")]));
    const id = responseOf(t1).id as string;
    a.close();
    // Straight to the fake: a second upstream connection does not know the id.
    const direct = await openWs(wsUrl(env.upstream.url, "/backend-api/codex/responses"), {
      "chatgpt-account-id": "chatgpt-w1",
    });
    const frames = await direct.turn(create([user("two")], { previous_response_id: id }));
    expect(frames[0]).toMatchObject({
      type: "error",
      status: 400,
      error: { code: "previous_response_not_found" },
    });
    direct.close();
  });

  test("x-codex-turn-state: the client's is echoed, else a new one is made", async () => {
    const given = await open({ "x-codex-turn-state": "ts-client-1" });
    expect(given.headers["x-codex-turn-state"]).toBe("ts-client-1");
    given.close();
    const made = await open();
    expect(String(made.headers["x-codex-turn-state"])).toMatch(/^turn_[0-9a-f]{32}$/);
    made.close();
  });

  test("a plain GET is 426; bad messages get error frames the socket survives", async () => {
    const plain = await fetch(`${env.gw.url}/backend-api/codex/responses`);
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe("upgrade_required");

    const before = env.fake.requests.length;
    const ws = await open();
    ws.send("{not json");
    expect(await ws.next()).toMatchObject({ type: "error", status: 400, error: { code: "invalid_json" } });
    ws.send({ type: "session.update" });
    expect(await ws.next()).toMatchObject({ type: "error", status: 400, error: { param: "type" } });
    ws.send({ type: "response.create", input: "hi" });
    expect(await ws.next()).toMatchObject({
      type: "error",
      status: 400,
      error: { type: "invalid_request_error", param: "model" },
    });
    ws.send(
      create([user("x")], {
        tools: [
          {
            type: "function",
            name: "f",
            strict: true,
            parameters: { type: "object", properties: { a: { type: "string" } } },
          },
        ],
      }),
    );
    expect(await ws.next()).toMatchObject({
      type: "error",
      status: 400,
      error: { code: "invalid_function_parameters" },
    });
    expect(env.fake.requests.length).toBe(before);
    env.fake.script("chatgpt-w1", { kind: "text", text: "still here" });
    expect(textOf(await ws.turn(create([user("ok")])))).toBe("still here");
    ws.close();
  });

  test("an id this socket never produced is a retryable stream_incomplete, and nothing goes upstream", async () => {
    const before = env.fake.requests.length;
    const ws = await open();
    const frames = await ws.turn(create([user("two")], { previous_response_id: "resp_from_elsewhere" }));
    expect(frames.length).toBe(1);
    expect(frames[0]).toMatchObject({
      type: "response.failed",
      response: { status: "failed", error: { code: "stream_incomplete" } },
    });
    expect(JSON.stringify(frames[0])).not.toContain("resp_from_elsewhere");
    expect(env.fake.requests.length).toBe(before);
    ws.close();
  });

  test("the socket stays on its account; when it becomes unusable the next turn moves before its first event, with the whole conversation", async () => {
    env.fake.script("chatgpt-w2", { kind: "text", text: "on w2" });
    // Bind the turn state to w2: the first turn goes there, later ones stay (pinned), not by fill_first.
    await env.gw.running.gateway.sticky.bind("ts-pin", "turn_state", "w2", Date.now(), 3_600_000);
    const ws = await open({ "x-codex-turn-state": "ts-pin" });
    const t1 = await ws.turn(create([user("one")]));
    expect(textOf(t1)).toBe("on w2");
    env.fake.script("chatgpt-w2", { kind: "text", text: "still w2" });
    const t2 = await ws.turn(create([user("two")], { previous_response_id: responseOf(t1).id }));
    expect(textOf(t2)).toBe("still w2");
    // w2 is rate limited between turns: the next turn fails over to w1 before its first event.
    await env.gw.running.gateway.services.apply(
      [{ type: "account.rate_limit", accountId: "w2", resetAt: Date.now() + 600_000, reason: "test" }],
      { source: "test" },
    );
    env.fake.script("chatgpt-w1", { kind: "text", text: "moved to w1" });
    const before = env.fake.requests.length;
    const t3 = await ws.turn(create([user("three")], { previous_response_id: responseOf(t2).id }));
    expect(textOf(t3)).toBe("moved to w1");
    const up = env.fake.requests.slice(before);
    expect(up.length).toBe(1);
    expect(up[0]!.chatgptAccountId).toBe("chatgpt-w1");
    // A new upstream connection cannot know w2's responses: it gets the whole conversation instead.
    expect(up[0]!.body.previous_response_id).toBeUndefined();
    const texts = (up[0]!.body.input as Json[]).map((i) => JSON.stringify(i));
    expect(
      texts.filter((t) => t.includes('"one"') || t.includes('"two"') || t.includes('"three"')).length,
    ).toBe(3);
    expect(texts.some((t) => t.includes("still w2"))).toBe(true);
    ws.close();
  });

  test("an upstream error before the first event fails over within the turn; a WebSocket turn holds a stream lease", async () => {
    env.fake.script("chatgpt-w1", {
      kind: "http_error",
      status: 429,
      body: { error: { type: "usage_limit_reached", code: "usage_limit_reached", message: "limit" } },
    });
    let finish!: () => void;
    const rest = new Promise<void>((r) => {
      finish = r;
    });
    env.fake.script("chatgpt-w2", { kind: "slow", text: "after failover", rest });
    const ws = await open();
    ws.send(create([user("x")]));
    const first = await ws.next();
    expect(first.type).toBe("response.created");
    expect(env.inFlight("w2")).toBe(1);
    finish();
    let frames = [first];
    while (frames.at(-1)!.type !== "response.completed") frames = [...frames, await ws.next()];
    expect(textOf(frames)).toBe("after failover");
    expect(await eventually(() => env.inFlight("w2") === 0)).toBe(true);
    ws.close();
  });

  test("a 401 on the upstream socket refreshes the token and reconnects with it, within the turn", async () => {
    env.fake.script(
      "chatgpt-w1",
      { kind: "text", text: "before" },
      { kind: "http_error", status: 401, body: { error: { code: "token_expired", message: "expired" } } },
      { kind: "text", text: "after refresh" },
    );
    const ws = await open();
    expect(textOf(await ws.turn(create([user("one")])))).toBe("before");
    const first = env.fake.connections.at(-1)!;
    const t2 = await ws.turn(create([user("two")]));
    expect(textOf(t2)).toBe("after refresh");
    const second = env.fake.connections.at(-1)!;
    expect(second.id).toBe(first.id + 1);
    expect(first.closed).toBe(true);
    expect(second.headers.get("authorization")).not.toBe(first.headers.get("authorization"));
    ws.close();
  });

  test("a client that goes away mid-turn closes the upstream socket and releases the lease", async () => {
    env.fake.script("chatgpt-w1", { kind: "slow", text: "never finished", delayMs: 1000 });
    const ws = await open();
    ws.send(create([user("x")]));
    await ws.next();
    const conn = env.fake.connections.at(-1)!;
    ws.socket.terminate();
    expect(await eventually(() => conn.closed)).toBe(true);
    expect(await eventually(() => env.inFlight("w1") === 0)).toBe(true);
  });

  test("/v1/responses socket hides codex.* events", async () => {
    env.fake.script("chatgpt-w1", { kind: "text", text: "public", rateLimits: true });
    const ws = await open({}, "/v1/responses");
    const frames = await ws.turn(create([user("x")]));
    expect(frames.some((f) => String(f.type).startsWith("codex."))).toBe(false);
    expect(textOf(frames)).toBe("public");
    ws.close();
    env.fake.script("chatgpt-w1", { kind: "text", text: "native", rateLimits: true });
    const native = await open();
    const all = await native.turn(create([user("x")]));
    expect(all.some((f) => f.type === "codex.rate_limits")).toBe(true);
    native.close();
  });
});

describe("limits and admission", () => {
  let lim: ProxyEnv;
  // The sessions' idle timeout runs on the gateway's clock: the test moves it instead of waiting.
  const clock = new FakeClock(Date.now());
  beforeAll(async () => {
    lim = await startProxyEnv({
      clock,
      accounts: [{ id: "l1" }],
      env: {
        CODEX_LB_WEBSOCKET_MAX_MESSAGE_BYTES: "4096",
        CODEX_LB_WEBSOCKET_IDLE_TIMEOUT_SECONDS: "0.3",
      },
    });
  });
  afterAll(async () => {
    await lim.stop();
  });

  test("a message over the size cap closes the socket with 1009", async () => {
    const ws = await openWs(wsUrl(lim.gw.url, "/backend-api/codex/responses"));
    ws.send(create([user("x".repeat(8000))]));
    expect((await ws.closed).code).toBe(1009);
    expect(lim.fake.requests.length).toBe(0);
  });

  test("an idle socket is closed after the idle timeout", async () => {
    const ws = await openWs(wsUrl(lim.gw.url, "/backend-api/codex/responses"));
    let closedAt: number | null = null;
    void ws.closed.then(() => {
      closedAt = clock.now();
    });
    const t0 = clock.now();
    // Just short of the timeout the socket is open (a close would have arrived meanwhile).
    await clock.advance(299);
    await Bun.sleep(20);
    expect(closedAt).toBeNull();
    await clock.advance(1);
    const c = await ws.closed;
    expect(c).toEqual({ code: 1000, reason: "idle timeout" });
    expect(closedAt! - t0).toBeGreaterThanOrEqual(250);
  });

  test("an upgrade from another web site is refused with a real HTTP 403 (no cross-site socket)", async () => {
    const refused = await openWs(wsUrl(lim.gw.url, "/backend-api/codex/responses"), {
      origin: "https://evil.example",
    }).then(
      () => null,
      (e: { status: number; body: string }) => e,
    );
    expect(refused?.status).toBe(403);
    expect(JSON.parse(refused!.body)).toMatchObject({ error: { code: "cross_origin_refused" } });
  });

  test("with API keys enforced, an upgrade without a key is refused with a real HTTP 401", async () => {
    await lim.gw.running.gateway.runtimeSettings.update({ apiKeyAuthEnabled: true } as never);
    try {
      const refused = await openWs(wsUrl(lim.gw.url, "/backend-api/codex/responses")).then(
        () => null,
        (e: { status: number; body: string }) => e,
      );
      expect(refused?.status).toBe(401);
      expect(JSON.parse(refused!.body)).toMatchObject({ error: { type: "authentication_error" } });
    } finally {
      await lim.gw.running.gateway.runtimeSettings.update({ apiKeyAuthEnabled: false } as never);
    }
  });
});
