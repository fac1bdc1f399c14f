/**
 * Slow request headers and idle connections, on real sockets against 127.0.0.1 (bounded count and
 * time; these wait on the server's own timers, which no fake clock reaches):
 * - a new connection that trickles its headers is closed by the server without an answer (Bun's fixed
 *   limit of about 10 s, checked every few seconds; not a setting, and trickling does not extend it),
 *   and a bounded flood of such connections leaves `/health` answering;
 * - a kept-alive connection (only authenticated callers keep one) is closed after
 *   `CODEX_LB_CONNECTION_IDLE_TIMEOUT_SECONDS` of waiting for its next request or of trickling that
 *   request's headers, while answers in progress and streams are not cut by it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

interface Outcome {
  /** Complete answers received (status lines). */
  answers: number;
  /** The server closed the connection (not the client at the end of its trickle). */
  closedByServer: boolean;
}

/**
 * Opens a raw connection, writes `head`, then one byte of `trickled` every `everyMs` until it is all
 * sent; then the client ends the connection itself (so `closedByServer` false means it outlived it).
 */
function rawClient(port: number, head: string, trickled: string, everyMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let text = "";
    let ending = false;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      resolve({ answers: text.split("HTTP/1.1 ").length - 1, closedByServer });
    };
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(head);
          let i = 0;
          const timer = setInterval(() => {
            if (done) return clearInterval(timer);
            if (i >= trickled.length) {
              clearInterval(timer);
              ending = true;
              s.end();
              finish(false);
              return;
            }
            s.write(trickled[i++]!);
          }, everyMs);
        },
        data(_s, d) {
          text += new TextDecoder().decode(d);
        },
        close() {
          finish(!ending);
        },
        error() {
          finish(!ending);
        },
      },
    }).catch(() => finish(false));
  });
}

const PAD = "x".repeat(150); // trickled at 200 ms a byte: 30 s, far past every limit below

describe("headers that never finish", () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startGateway({ env: { CODEX_LB_LOG_LEVEL: "warn" } });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("a bounded flood of header-trickling connections from 127.0.0.1: /health answers, the server closes each", async () => {
    const FLOOD = 200;
    const flood = Array.from({ length: FLOOD }, () =>
      rawClient(port, "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", PAD, 200),
    );
    // While they are open, /health answers every time (each within the 2 s abort, else fetch throws).
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${gw.url}/health`, { signal: AbortSignal.timeout(2000) });
      expect(res.status).toBe(200);
    }
    const outcomes = await Promise.all(flood);
    // None got an answer; the server closed every one before its 30 s trickle was over.
    expect(outcomes.filter((o) => o.answers === 0 && o.closedByServer)).toHaveLength(FLOOD);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  }, 60_000);
});

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
