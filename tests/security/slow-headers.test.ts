/**
 * Slow request headers and idle connections, on real sockets against 127.0.0.1 (bounded count and
 * time; these wait on the server's own timers, which no fake clock reaches). Floods come from other
 * loopback source addresses (127.0.0.2, 127.0.0.3) so the normal client on 127.0.0.1 is another address:
 * - a new connection that trickles its headers, or sends nothing, is closed without an answer after
 *   `CODEX_LB_HEADERS_TIMEOUT_SECONDS`, and at most `CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS`
 *   such connections per address are open at once (more are closed at once), while `/health` and a
 *   normal client keep answering;
 * - a kept-alive connection (only authenticated callers keep one) is closed after
 *   `CODEX_LB_CONNECTION_IDLE_TIMEOUT_SECONDS` of waiting for its next request or of trickling that
 *   request's headers, while answers in progress and streams are not cut by it;
 * - the server is the guarded one on this Bun (the project pins 1.4.5), and its last-resort error
 *   handler answers a JSON 500 even when the error callback itself throws; the node Socket Bun's
 *   node:http makes per connection is let go of once the guard is done with it, on this Bun too.
 * The flood's source addresses need Linux's loopback (all of 127.0.0.0/8 bound to `lo`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, Server as NodeHttpServer } from "node:http";
import { connect, type Socket } from "node:net";
import type { Server } from "bun";
import { listen, releaseNodeSocket } from "../../src/runtime/bun/serve.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

interface Outcome {
  /** Complete answers received (status lines). */
  answers: number;
  /** The server closed the connection (not the client at the end of its trickle). */
  closedByServer: boolean;
}

/**
 * Opens a raw connection to 127.0.0.1 from the loopback address `from`, writes `head`, then one byte
 * of `trickled` every `everyMs` until it is all sent; then the client ends the connection itself (so
 * `closedByServer` false means it outlived it). While the connection is open it is in `live`.
 */
function rawClient(
  port: number,
  head: string,
  trickled: string,
  everyMs: number,
  from = "127.0.0.1",
  live?: Set<object>,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let text = "";
    let ending = false;
    let done = false;
    const token = {};
    let timer: ReturnType<typeof setInterval> | undefined;
    const finish = (closedByServer: boolean) => {
      live?.delete(token);
      clearInterval(timer);
      if (done) return;
      done = true;
      resolve({ answers: text.split("HTTP/1.1 ").length - 1, closedByServer });
    };
    const s = connect({ host: "127.0.0.1", port, localAddress: from }, () => {
      if (done) return;
      live?.add(token);
      if (head !== "") s.write(head);
      let i = 0;
      timer = setInterval(() => {
        if (done) return;
        if (i >= trickled.length) {
          ending = true;
          s.end();
          finish(false);
          return;
        }
        s.write(trickled[i++]!);
      }, everyMs);
    });
    s.on("data", (d) => {
      text += d.toString("latin1");
    });
    s.on("close", () => finish(!ending));
    s.on("error", () => finish(!ending));
  });
}

describe("headers that never finish: CODEX_LB_HEADERS_TIMEOUT_SECONDS and CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS", () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startGateway({
      env: {
        CODEX_LB_LOG_LEVEL: "warn",
        CODEX_LB_HEADERS_TIMEOUT_SECONDS: "3",
        CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS: "50",
      },
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("a header-trickling flood from one address: 50 open at once, each closed at the deadline; /health and a normal client answer", async () => {
    const FLOOD = 200;
    const live = new Set<object>();
    // 40 bytes at 200 ms: 8 s, past the 3 s deadline (×1.25 at most) and short of Bun's own ~10 s.
    const pad = "x".repeat(40);
    const flood = Array.from({ length: FLOOD }, () =>
      rawClient(
        port,
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        pad,
        200,
        "127.0.0.2",
        live,
      ),
    );
    // Connections that send nothing at all, from a third address: the same deadline.
    const silent = Array.from({ length: 5 }, () => rawClient(port, "", "", 8_000, "127.0.0.3"));
    // Well inside the deadline: the cap, not the deadline, is what keeps the rest out. After the
    // connects, wait (at most 5 s) for the refused ones' closes to be seen: exactly the cap is open.
    await Bun.sleep(1_000);
    for (let waited = 0; live.size > 50 && waited < 5_000; waited += 50) await Bun.sleep(50);
    expect(live.size).toBe(50);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${gw.url}/health`, { signal: AbortSignal.timeout(2000) });
      expect(res.status).toBe(200);
      // A normal client on this machine (no password set: the admin API answers it).
      const settings = await fetch(`${gw.url}/api/settings`, { signal: AbortSignal.timeout(2000) });
      expect(settings.status).toBe(200);
    }
    const outcomes = await Promise.all([...flood, ...silent]);
    // None got an answer; the server closed every one before its own trickle (or wait) was over.
    expect(outcomes.filter((o) => o.answers === 0 && o.closedByServer)).toHaveLength(FLOOD + 5);
    // The address's count went back down: a new connection from it is served.
    const after = await rawClient(
      port,
      "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      "",
      2_000,
      "127.0.0.2",
    );
    expect(after.answers).toBe(1);
  }, 60_000);
});

const PAD = "x".repeat(150); // trickled at 200 ms a byte: 30 s, far past every limit below

describe("CODEX_LB_CONNECTION_IDLE_TIMEOUT_SECONDS: kept-alive connections", () => {
  let env: ProxyEnv;
  let port: number;
  beforeAll(async () => {
    env = await startProxyEnv({
      accounts: [{ id: "i1" }],
      env: { CODEX_LB_CONNECTION_IDLE_TIMEOUT_SECONDS: "1", CODEX_LB_SSE_KEEPALIVE_SECONDS: "0" },
    });
    port = Number(new URL(env.gw.url).port);
  });
  afterAll(async () => {
    await env.stop();
  });

  // This machine without a password is an authenticated caller: its connection is kept alive.
  const settings = "GET /api/settings HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

  test("after an answer, a connection that sends nothing, or trickles its next headers, is closed", async () => {
    const [idle, trickling] = await Promise.all([
      // The whole "trickle" is one byte 30 s later: the connection just waits.
      rawClient(port, settings, "G", 30_000),
      rawClient(port, `${settings}GET /api/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `, PAD, 200),
    ]);
    expect(idle).toEqual({ answers: 1, closedByServer: true });
    expect(trickling).toEqual({ answers: 1, closedByServer: true });
  }, 60_000);

  test("answers that take longer than the idle limit are not cut: a stream and an assembled answer", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    env.fake.script("chatgpt-i1", { kind: "slow", text: "a quiet stream", rest: held });
    env.fake.script("chatgpt-i1", { kind: "text", text: "a slow answer", after: held });
    const post = (stream: boolean) =>
      fetch(`${env.gw.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi", stream }),
      });
    const streamed = await post(true);
    const reader = streamed.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("response.created");
    const assembled = post(false);
    // Quiet for 6 s: past the 1 s limit and the server's few-second timer granularity.
    await Bun.sleep(6_000);
    release();
    let rest = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += new TextDecoder().decode(r.value);
    }
    expect(rest).toContain("response.completed");
    const json = (await (await assembled).json()) as { output: { content: { text: string }[] }[] };
    expect(JSON.stringify(json.output)).toContain("a slow answer");
  }, 60_000);
});

describe("the Bun server seam (src/runtime/bun/serve.ts)", () => {
  const opts = {
    host: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 1024,
    connectionIdleTimeoutSeconds: 60,
    headersTimeoutSeconds: 10,
    maxPendingConnectionsPerAddress: 8,
  };

  test("the connection guard is on with this Bun (the project pins 1.4.5)", async () => {
    const listening = listen(() => new Response("ok"), opts);
    try {
      expect(listening.guarded).toBe(true);
      const res = await fetch(`http://127.0.0.1:${listening.port}/`);
      expect(await res.text()).toBe("ok");
    } finally {
      await listening.close(0);
    }
  });

  test("a handler error whose error callback throws too is still a JSON 500, never Bun's error page", async () => {
    const seen: string[] = [];
    const listening = listen(
      () => {
        throw new Error("handler broke");
      },
      {
        ...opts,
        onError: (e) => {
          seen.push(e.message);
          throw new Error("logger broke");
        },
      },
    );
    try {
      const res = await fetch(`http://127.0.0.1:${listening.port}/`);
      expect(res.status).toBe(500);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(await res.json()).toEqual({ error: { code: "server_error", message: "Internal server error" } });
      expect(seen).toEqual(["handler broke"]);
    } finally {
      await listening.close(0);
    }
  });

  test("a connection's node Socket is collected once released (memory per open stream), and the connection still answers", async () => {
    // A server started as `listen` starts it: node:http's accept hook, Bun.serve's request path.
    const http = createServer({ headersTimeout: 0, requestTimeout: 0 });
    const accepted: Socket[] = [];
    http.on("connection", (socket: Socket) => accepted.push(socket));
    http.listen(0, "127.0.0.1");
    const server = (http as unknown as Record<symbol, Server<undefined>>)[Symbol.for("::bunternal::")]!;
    server.reload({ fetch: () => new Response("ok") });
    // Kept-alive raw connections: `ask` sends one request and resolves with its answer.
    const open = () =>
      new Promise<{ ask: () => Promise<string>; end: () => void }>((resolve) => {
        let text = "";
        let waiting: ((t: string) => void) | undefined;
        const s = connect({ host: "127.0.0.1", port: server.port! }, () =>
          resolve({
            ask: () =>
              new Promise<string>((r) => {
                text = "";
                waiting = r;
                s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
              }),
            end: () => s.end(),
          }),
        );
        s.on("data", (d) => {
          text += d.toString("latin1");
          if (text.endsWith("ok")) waiting?.(text);
        });
      });
    const clients = await Promise.all(Array.from({ length: 4 }, open));
    try {
      for (const c of clients) expect(await c.ask()).toStartWith("HTTP/1.1 200");
      expect(accepted.length).toBe(4);
      // The first two are released (as the guard does after the first headers); the others are the control.
      const refs = accepted.map((s) => new WeakRef(s));
      const kept = accepted.slice(2);
      releaseNodeSocket(accepted[0]!);
      releaseNodeSocket(accepted[1]!);
      accepted.length = 0;
      // Collections until both are gone (the conservative stack scan may keep one alive for a while).
      const alive = () => refs.map((r) => r.deref() !== undefined);
      await eventually(async () => {
        Bun.gc(true);
        await Bun.sleep(10);
        return !alive()[0] && !alive()[1];
      }, 5_000);
      expect(alive()).toEqual([false, false, true, true]);
      // The connections themselves are untouched: each answers its next request.
      for (const c of clients) expect(await c.ask()).toStartWith("HTTP/1.1 200");
      // A Bun whose node:http keeps no tracked set where it is looked for: nothing is unlinked, so the
      // Socket still leaves the set it is in when its connection closes (the two kept are counted).
      const connections = () =>
        new Promise<number>((r) => http.getConnections((_e: Error | null, n: number) => r(n)));
      expect(await connections()).toBe(2);
      const third = kept[0]!;
      const server3 = (third as unknown as { server: object }).server;
      (third as unknown as { server: object }).server = {};
      releaseNodeSocket(third);
      (third as unknown as { server: object }).server = server3;
      clients[2]!.end();
      expect(await eventually(async () => (await connections()) === 1, 10_000)).toBe(true);
    } finally {
      for (const c of clients) c.end();
      server.stop(true);
      http.close();
    }
  });

  test("`listen` lets go of a connection's node Socket once its first headers are in, and not before", async () => {
    // Every Socket node:http hands to a `connection` listener, watched (node:http emits it once the
    // connection's first bytes arrive; the guard's listener is the one that keeps it while pending).
    const refs = new Map<number, WeakRef<Socket>>();
    const emit = NodeHttpServer.prototype.emit;
    NodeHttpServer.prototype.emit = function (
      this: NodeHttpServer,
      event: string | symbol,
      ...args: unknown[]
    ) {
      const socket = args[0] as Socket;
      if (event === "connection") refs.set(socket.remotePort!, new WeakRef(socket));
      return emit.call(this, event, ...args);
    } as typeof emit;
    const listening = listen(() => new Response("ok"), { ...opts, maxPendingConnectionsPerAddress: 64 });
    const clients: Socket[] = [];
    try {
      const answered: boolean[] = [];
      for (let i = 0; i < 20; i++)
        clients.push(
          await new Promise<Socket>((resolve) => {
            const s = connect({ host: "127.0.0.1", port: listening.port }, () => resolve(s));
            s.on("data", (d) => {
              if (d.toString("latin1").startsWith("HTTP/1.1 200")) answered[i] = true;
            });
          }),
        );
      // All 20 start a request; the first 10 finish their headers, the other 10 stay pending.
      for (const c of clients) c.write("GET / HTTP/1.1\r\n");
      expect(await eventually(async () => refs.size === 20, 5_000)).toBe(true);
      for (const c of clients.slice(0, 10)) c.write("host: x\r\n\r\n");
      expect(await eventually(async () => answered.filter(Boolean).length === 10, 5_000)).toBe(true);
      // By the client's port: node:http may emit the connections in another order.
      const alive = () => clients.map((c) => refs.get(c.localPort!)?.deref() !== undefined);
      // The released ones are collected: the engine's conservative stack scan may keep one or two
      // alive for a while, so collections are asked for until at most one is left (10 without the release).
      const collected = await eventually(async () => {
        Bun.gc(true);
        await Bun.sleep(10);
        return alive().filter((a, i) => a && i < 10).length <= 1;
      }, 5_000);
      expect(alive().filter((a, i) => a && i < 10).length).toBeLessThanOrEqual(1);
      expect(collected).toBe(true);
      // The pending ones are kept by the guard (it closes them at the header deadline).
      expect(alive().filter((a, i) => a && i >= 10).length).toBe(10);
    } finally {
      NodeHttpServer.prototype.emit = emit;
      for (const c of clients) c.destroy();
      await listening.close(0);
    }
  });
});
