/**
 * The upstream side of a Responses WebSocket: `CODEX_LB_UPSTREAM_TRANSPORT=auto` falls back to HTTP
 * SSE when the upstream refuses the upgrade (and remembers it for that upstream), continuations then
 * travel as the whole conversation (the HTTP backend keeps no `store: false` response), a warm-up
 * turn is answered locally; `http` never tries the upgrade, `websocket` never falls back. Also the
 * openai SDK's own Responses WebSocket client against `/v1/responses`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { ResponsesWS } from "openai/resources/responses/ws";
import { FakeClock } from "../../src/core/clock.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";
import { openWs, wsUrl } from "../support/ws-client.ts";

type Json = Record<string, unknown>;
const user = (text: string) => ({ type: "message", role: "user", content: [{ type: "input_text", text }] });
const create = (input: unknown[], extra: Json = {}) => ({
  type: "response.create",
  model: "gpt-5.2",
  input,
  ...extra,
});
const textOf = (frames: Json[]) =>
  frames
    .filter((f) => f.type === "response.output_text.delta")
    .map((f) => f.delta)
    .join("");
const wsCalls = (e: ProxyEnv) => e.upstream.received.filter((r) => r.method === "WS").length;

describe("auto: the upstream refuses the upgrade", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "h1" }] });
    env.fake.refuseWebSocket = 404;
  });
  afterAll(async () => {
    await env.stop();
  });

  test("turns go over HTTP SSE; a continuation is sent as the whole conversation; the answer is remembered", async () => {
    env.fake.script("chatgpt-h1", { kind: "text", text: "over http" }, { kind: "text", text: "continued" });
    const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
    // A warm-up turn: answered here, nothing upstream.
    const warm = await ws.turn(create([user("sys")], { generate: false }));
    expect(warm.map((f) => f.type)).toEqual(["response.created", "response.completed"]);
    const warmId = (warm.at(-1)!.response as Json).id as string;
    expect(env.fake.requests.length).toBe(0);

    const t1 = await ws.turn(create([user("one")], { previous_response_id: warmId }));
    expect(textOf(t1)).toBe("over http");
    const id1 = (t1.at(-1)!.response as Json).id as string;
    const t2 = await ws.turn(create([user("two")], { previous_response_id: id1 }));
    expect(textOf(t2)).toBe("continued");
    expect(env.fake.requests.map((r) => r.transport)).toEqual(["http", "http"]);
    // The fake HTTP backend refuses any previous_response_id: the gateway sent none, but everything.
    const [r1, r2] = env.fake.requests as unknown as [{ body: Json }, { body: Json }];
    expect(r1.body.previous_response_id).toBeUndefined();
    expect(r1.body.input).toEqual([user("sys"), user("one")]);
    expect(r2.body.previous_response_id).toBeUndefined();
    const items = r2.body.input as Json[];
    expect(items[0]).toEqual(user("sys"));
    expect(items[1]).toEqual(user("one"));
    expect(items.some((i) => i.type === "message" && i.role === "assistant")).toBe(true);
    expect(items.at(-1)).toEqual(user("two"));
    ws.close();

    // Remembered for this upstream: a second socket does not try the upgrade again.
    expect(wsCalls(env)).toBe(1);
    env.fake.script("chatgpt-h1", { kind: "text", text: "again" });
    const ws2 = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
    expect(textOf(await ws2.turn(create([user("x")])))).toBe("again");
    expect(wsCalls(env)).toBe(1);
    ws2.close();

    const rows = await eventually(async () => {
      const r = await env.db.selectFrom("request_logs").selectAll().execute();
      return r.length >= 4 ? r : null;
    });
    for (const r of rows!) expect(r).toMatchObject({ transport: "websocket", upstream_transport: "http" });
  });
});

describe("the upstream connection's lifetime", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "l1" }] });
  });
  afterAll(async () => {
    await env.stop();
  });

  test("websocket_connection_limit_reached: the turn goes, whole, to a new upstream connection; the client sees nothing", async () => {
    env.fake.script(
      "chatgpt-l1",
      { kind: "text", text: "first" },
      { kind: "text", text: "second" },
      { kind: "text", text: "third" },
    );
    const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
    const t1 = await ws.turn(create([user("one")]));
    const id1 = (t1.at(-1)!.response as Json).id as string;
    const conn0 = env.fake.requests.at(-1)!.connection!;
    // The backend ends the connection's life (60 minutes) between turns.
    env.fake.expire(conn0);
    const t2 = await ws.turn(create([user("two")], { previous_response_id: id1 }));
    expect(t2.map((f) => f.type)).not.toContain("error");
    expect(textOf(t2)).toBe("second");
    const id2 = (t2.at(-1)!.response as Json).id as string;
    // And the next continuation stays on the new connection, with only its new input.
    const t3 = await ws.turn(create([user("three")], { previous_response_id: id2 }));
    expect(textOf(t3)).toBe("third");
    ws.close();

    const [r1, refused, r2, r3] = env.fake.requests as unknown as [Req, Req, Req, Req];
    expect(env.fake.requests.length).toBe(4);
    expect(refused).toMatchObject({ connection: conn0, body: { previous_response_id: id1 } });
    expect(r2.connection).not.toBe(conn0);
    expect(env.fake.connections[conn0]!.closed).toBe(true);
    for (const r of [r1, refused, r2, r3]) expect(r.chatgptAccountId).toBe("chatgpt-l1");
    // The new connection never saw turn one: it got the whole conversation, no previous_response_id.
    expect(r2.body.previous_response_id).toBeUndefined();
    const items = r2.body.input as Json[];
    expect(items[0]).toEqual(user("one"));
    expect(items.some((i) => i.type === "message" && i.role === "assistant")).toBe(true);
    expect(items.at(-1)).toEqual(user("two"));
    expect(r3).toMatchObject({
      connection: r2.connection,
      body: { previous_response_id: id2, input: [user("three")] },
    });
    // One request-log row per turn, all served.
    const rows = await eventually(async () => {
      const r = await env.db.selectFrom("request_logs").selectAll().execute();
      return r.length >= 3 ? r : null;
    });
    expect(rows!.length).toBe(3);
    for (const r of rows!) expect(r).toMatchObject({ status: "success", upstream_transport: "websocket" });
  });
});

describe("the history a socket keeps (CODEX_LB_WEBSOCKET_MAX_HISTORY_BYTES)", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({
      accounts: [{ id: "m1" }],
      env: { CODEX_LB_WEBSOCKET_MAX_HISTORY_BYTES: "2000" },
    });
  });
  afterAll(async () => {
    await env.stop();
  });

  test("past the cap, continuations still work on their upstream connection; one that must move fails retryably, never wrong", async () => {
    env.fake.always("chatgpt-m1", { kind: "text", text: "ok" });
    const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
    // Under the cap: kept. Then a message that takes the conversation past 2,000 characters.
    const t1 = await ws.turn(create([user("small")]));
    const id1 = (t1.at(-1)!.response as Json).id as string;
    const t2 = await ws.turn(create([user("x".repeat(3000))], { previous_response_id: id1 }));
    const id2 = (t2.at(-1)!.response as Json).id as string;
    // The next continuation goes as sent to the connection that made id2.
    const t3 = await ws.turn(create([user("three")], { previous_response_id: id2 }));
    expect(textOf(t3)).toBe("ok");
    const id3 = (t3.at(-1)!.response as Json).id as string;
    const sent = env.fake.requests as unknown as Req[];
    expect(sent.at(-1)).toMatchObject({
      connection: sent[0]!.connection,
      body: { previous_response_id: id2, input: [user("three")] },
    });
    // The connection's life ends: the turn would have to move, and the gateway no longer has the
    // conversation. The client gets a retryable stream_incomplete, no answer made without history.
    env.fake.expire(sent[0]!.connection!);
    const before = sent.length;
    const t4 = await ws.turn(create([user("four")], { previous_response_id: id3 }));
    expect(t4.map((f) => f.type)).toEqual(["response.failed"]);
    expect((t4[0]!.response as Json).error).toMatchObject({ code: "stream_incomplete" });
    // Nothing reached a model without its history: the refused turn and the new connection's
    // refusal of an id it never made.
    const moved = sent.slice(before);
    expect(moved.map((r) => r.body.previous_response_id)).toEqual([id3, id3]);
    ws.close();
  });
});

type Req = { connection?: number; chatgptAccountId: string | null; body: Json };

describe("explicit transports", () => {
  test("http: the upgrade is never tried", async () => {
    const env = await startProxyEnv({
      accounts: [{ id: "x1" }],
      env: { CODEX_LB_UPSTREAM_TRANSPORT: "http" },
    });
    try {
      env.fake.script("chatgpt-x1", { kind: "text", text: "sse" });
      const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
      expect(textOf(await ws.turn(create([user("x")])))).toBe("sse");
      expect(wsCalls(env)).toBe(0);
      ws.close();
    } finally {
      await env.stop();
    }
  });

  test("websocket: a refused upgrade is an error frame, not a silent switch to HTTP", async () => {
    const env = await startProxyEnv({
      accounts: [{ id: "y1" }],
      env: { CODEX_LB_UPSTREAM_TRANSPORT: "websocket" },
    });
    try {
      env.fake.refuseWebSocket = 404;
      const ws = await openWs(wsUrl(env.gw.url, "/backend-api/codex/responses"));
      const frames = await ws.turn(create([user("x")]));
      expect(frames[0]).toMatchObject({ type: "error", status: 404 });
      expect(env.fake.requests.length).toBe(0);
      ws.close();
    } finally {
      await env.stop();
    }
  });
});

describe("openai SDK", () => {
  let env: ProxyEnv;
  beforeAll(async () => {
    env = await startProxyEnv({ accounts: [{ id: "s1" }] });
  });
  afterAll(async () => {
    await env.stop();
  });

  test("ResponsesWS against /v1/responses: a turn and a continuation on one socket", async () => {
    env.fake.script("chatgpt-s1", { kind: "text", text: "sdk over ws" }, { kind: "text", text: "sdk again" });
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const rws = new ResponsesWS(client);
    const events: Json[] = [];
    let done: () => void = () => {};
    let wait = new Promise<void>((r) => {
      done = r;
    });
    rws.on("event", (ev) => {
      events.push(ev as unknown as Json);
      if (ev.type === "response.completed" || ev.type === "response.failed" || ev.type === "error") done();
    });
    rws.send({ type: "response.create", model: "gpt-5.2", input: "hi" } as never);
    await wait;
    expect(events.at(-1)!.type).toBe("response.completed");
    expect(textOf(events)).toBe("sdk over ws");
    const id = (events.at(-1)!.response as Json).id as string;
    events.length = 0;
    wait = new Promise<void>((r) => {
      done = r;
    });
    rws.send({ type: "response.create", model: "gpt-5.2", input: "more", previous_response_id: id } as never);
    await wait;
    expect(textOf(events)).toBe("sdk again");
    const last = env.fake.requests.at(-1)!;
    expect(last.transport).toBe("websocket");
    expect(last.body.previous_response_id).toBe(id);
    expect(last.connection).toBe(env.fake.requests.at(-2)!.connection);
    rws.close();
  });
});

describe("an upstream WebSocket silent past the idle timeout", () => {
  test("ends the turn with response.failed stream_idle_timeout, on the gateway's clock", async () => {
    // The idle deadline runs on the gateway's clock: a gateway of its own on a FakeClock, moved
    // 300 ms at a time until the turn ends (no wall-clock wait). The upstream sends the answer's
    // first events, then nothing.
    const clock = new FakeClock(Date.now());
    const idle = await startProxyEnv({
      clock,
      accounts: [{ id: "i1" }],
      env: { CODEX_LB_UPSTREAM_TRANSPORT: "websocket", CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS: "1" },
    });
    try {
      idle.fake.script("chatgpt-i1", { kind: "silent" });
      const ws = await openWs(wsUrl(idle.gw.url, "/backend-api/codex/responses"));
      let frames: Json[] | null = null;
      const turn = ws.turn(create([user("hi")]), 30_000).then((f) => {
        frames = f;
      });
      // Nothing ends the turn before a whole second of silence on the gateway's clock.
      expect(await eventually(() => idle.fake.requests.length === 1)).toBe(true);
      await clock.advance(900);
      await Bun.sleep(20);
      expect(frames).toBeNull();
      for (let i = 0; i < 50 && frames === null; i++) {
        await clock.advance(300);
        await Bun.sleep(5);
      }
      await turn;
      const last = frames!.at(-1)!;
      expect(last.type).toBe("response.failed");
      expect((last.response as Json).error).toMatchObject({ code: "stream_idle_timeout" });
      expect(frames!.some((f) => f.type === "response.created")).toBe(true);
      ws.close();
    } finally {
      await idle.stop();
    }
  });
});
