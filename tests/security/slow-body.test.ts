/**
 * Slow and oversized request bodies: a deadline for the body, a JSON 413 for chunked bodies over the
 * limit, and a per-address cap on unauthenticated requests still sending their body, so a flood of
 * trickling connections from one address neither holds file descriptors for ever nor stops /health.
 * The flood is bounded (count and time) and aimed only at 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";

interface RawAnswer {
  status: number | null;
  text: string;
  closedAfterMs: number | null;
}

/** Opens a raw connection, sends `head` and then trickles `bodyByte` every `everyMs` (at most `max` times). */
function trickle(port: number, head: string, opts: { everyMs: number; max: number }) {
  const started = performance.now();
  const answer: RawAnswer = { status: null, text: "", closedAfterMs: null };
  let closed = false;
  const done = new Promise<RawAnswer>((resolve) => {
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(head);
          let sent = 0;
          const timer = setInterval(() => {
            if (closed || sent >= opts.max) {
              clearInterval(timer);
              if (!closed) s.end();
              return;
            }
            sent++;
            s.write("x");
          }, opts.everyMs);
        },
        data(_s, d) {
          answer.text += new TextDecoder().decode(d);
          const m = /^HTTP\/1\.1 (\d{3})/.exec(answer.text);
          if (m) answer.status = Number(m[1]);
        },
        close() {
          closed = true;
          answer.closedAfterMs = Math.round(performance.now() - started);
          resolve(answer);
        },
        error() {
          closed = true;
          resolve(answer);
        },
      },
    }).catch(() => resolve(answer));
  });
  return done;
}

describe("request body guards", () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startGateway({
      env: {
        CODEX_LB_MAX_BODY_BYTES: "4096",
        CODEX_LB_BODY_TIMEOUT_SECONDS: "0.6",
        CODEX_LB_MAX_UNAUTHENTICATED_PER_ADDRESS: "8",
        CODEX_LB_LOG_LEVEL: "warn",
      },
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.stop();
  });

  const chunked = (size: number) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(`{"name":"${"x".repeat(size)}"}`));
        c.close();
      },
    });

  test("a chunked body over the limit is a JSON 413 on both surfaces", async () => {
    for (const path of ["/api/api-keys", "/v1/responses"]) {
      const res = await fetch(`${gw.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chunked(10_000),
      });
      expect(res.status).toBe(413);
      expect(res.headers.get("content-type")).toContain("application/json");
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe("payload_too_large");
    }
    // The multipart upload routes too (their own body reading must not turn it into a 400).
    for (const path of ["/api/accounts/import", "/api/import/python"]) {
      const multipart = `--b0und\r\nContent-Disposition: form-data; name="auth_json"; filename="a.json"\r\nContent-Type: application/json\r\n\r\n${"x".repeat(10_000)}\r\n--b0und--\r\n`;
      const res = await fetch(`${gw.url}${path}`, {
        method: "POST",
        headers: { "content-type": "multipart/form-data; boundary=b0und" },
        body: new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode(multipart));
            c.close();
          },
        }),
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    }
    // A declared length over the limit: the same JSON 413, before any of the body is read.
    const declared = await trickle(
      port,
      "POST /api/api-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
      { everyMs: 100, max: 5 },
    );
    expect(declared.status).toBe(413);
    expect(declared.text).toContain('"payload_too_large"');
    // A chunked body under the limit is served.
    const ok = await fetch(`${gw.url}/api/api-keys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunked(10),
    });
    expect(ok.status).toBe(201);
  });

  test("a body that does not arrive within the deadline gets 408 and the connection is closed", async () => {
    const head =
      "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    const a = await trickle(port, head, { everyMs: 100, max: 60 });
    expect(a.status).toBe(408);
    expect(a.text).toContain('"request_timeout"');
    expect(a.closedAfterMs).toBeGreaterThanOrEqual(500);
    expect(a.closedAfterMs).toBeLessThan(3000);
  });

  test("a proxy body of declared length (read by the runtime in one go) still has the deadline", async () => {
    const head =
      "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    const a = await trickle(port, head, { everyMs: 100, max: 60 });
    expect(a.status).toBe(408);
    expect(a.text).toContain('"request_timeout"');
    expect(a.closedAfterMs).toBeGreaterThanOrEqual(500);
    expect(a.closedAfterMs).toBeLessThan(3000);
  });

  test("proxy bodies that do not arrive within the deadline get 408 each, and their connections close", async () => {
    // Read natively with one deadline timer shared by every body in progress (BodyGuard.readText).
    const head =
      "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    const answers = await Promise.all([0, 1, 2].map(() => trickle(port, head, { everyMs: 100, max: 60 })));
    for (const a of answers) {
      expect(a.status).toBe(408);
      expect(a.text).toContain('"request_timeout"');
      expect(a.closedAfterMs).not.toBeNull();
    }
  });

  test("a connection trickling its headers is closed by the server (the header deadline)", async () => {
    // One header byte every 200 ms, for up to 40 s: the server ends it first, without an answer.
    const everyMs = 200;
    const max = 200;
    const a = await trickle(port, "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", {
      everyMs,
      max,
    });
    expect(a.status).toBeNull();
    expect(a.closedAfterMs).not.toBeNull();
    expect(a.closedAfterMs!).toBeLessThan(everyMs * max);
  }, 60_000);

  test("a bounded flood of trickling logins from 127.0.0.1: /health keeps answering, the cap holds", async () => {
    const FLOOD = 300;
    const head =
      "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
    const flood: Promise<RawAnswer>[] = [];
    for (let i = 0; i < FLOOD; i++) flood.push(trickle(port, head, { everyMs: 100, max: 40 }));
    // While it runs, /health answers every time (each within the 2 s abort, else the fetch throws).
    const healthMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const res = await fetch(`${gw.url}/health`, { signal: AbortSignal.timeout(2000) });
      expect(res.status).toBe(200);
      healthMs.push(performance.now() - t0);
      await Bun.sleep(50);
    }
    const answers = await Promise.all(flood);
    const byStatus = new Map<number | null, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    // At most 8 were let in (and timed out); every other one was refused at once.
    expect(byStatus.get(408) ?? 0).toBeLessThanOrEqual(8);
    expect(byStatus.get(429) ?? 0).toBeGreaterThanOrEqual(FLOOD - 8);
    expect((byStatus.get(408) ?? 0) + (byStatus.get(429) ?? 0)).toBe(FLOOD);
    // Every flood connection was closed by the server well before the trickle would have ended (4 s).
    for (const a of answers) expect(a.closedAfterMs).toBeLessThan(3000);
    // Informational only (no timed assertion): how long /health took during the flood.
    console.log(`slow-body flood: /health answered in ${healthMs.map((ms) => Math.round(ms)).join(", ")} ms`);
    // A normal login from the same address works again once the flood is gone.
    const after = await fetch(`${gw.url}/api/auth/session`);
    expect(after.status).toBe(200);
  });
});

/** Sends `requests` one after the other on one keep-alive connection; the answers, and who closed it. */
function keepAlive(port: number, requests: string[], waitMs = 5000) {
  return new Promise<{ answers: string[]; closedByServer: boolean }>((resolve) => {
    const answers: string[] = [];
    let buf = "";
    let finished = false;
    const finish = (closedByServer: boolean, s?: { end(): void }) => {
      if (finished) return;
      finished = true;
      s?.end();
      resolve({ answers, closedByServer });
    };
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(requests[0]!);
          // The fallback: a connection the server keeps open is closed by us, and said so.
          setTimeout(() => finish(false, s), waitMs);
        },
        data(s, d) {
          buf += new TextDecoder().decode(d);
          const end = buf.indexOf("\r\n\r\n");
          const len = /content-length: (\d+)/i.exec(buf.slice(0, end));
          if (end < 0 || !len || buf.length < end + 4 + Number(len[1])) return;
          answers.push(buf.slice(0, end + 4 + Number(len[1])));
          buf = "";
          if (answers.length < requests.length) s.write(requests[answers.length]!);
          else finish(false, s);
        },
        close() {
          finish(true);
        },
        error() {
          finish(true);
        },
      },
    }).catch(() => finish(true));
  });
}

describe("idle connections of unauthenticated callers", () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startGateway({ env: { CODEX_LB_LOG_LEVEL: "warn" } });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.stop();
  });

  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

  test("an unauthenticated answer closes its connection; an authenticated caller keeps it alive", async () => {
    const login =
      'POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"password":"x"}';
    for (const first of [
      get("/health"),
      get("/"),
      login,
      get("/v1/models").replace("127.0.0.1", "rebind.example"),
    ]) {
      // The second request never gets an answer: the server closed the connection after the first.
      const r = await keepAlive(port, [first, get("/health")]);
      expect(r.answers).toHaveLength(1);
      expect(r.answers[0]!.toLowerCase()).toContain("connection: close");
      expect(r.closedByServer).toBe(true);
    }
    // This machine, no password set yet: an authenticated admin caller; two answers on one connection.
    const local = await keepAlive(port, [get("/api/settings"), get("/api/settings")]);
    expect(local.answers).toHaveLength(2);
    expect(local.answers[0]!).toStartWith("HTTP/1.1 200");
    expect(local.answers[0]!.toLowerCase()).not.toContain("connection: close");
  });

  test("a bounded flood of keep-alive /health connections from 127.0.0.1 holds none of them open", async () => {
    const FLOOD = 300;
    const all = await Promise.all(
      Array.from({ length: FLOOD }, () => keepAlive(port, [get("/health"), get("/health")])),
    );
    // Each got its answer, and then the server closed the connection (the second request unanswered).
    expect(
      all.filter((r) => r.answers.length === 1 && r.answers[0]!.startsWith("HTTP/1.1 200")),
    ).toHaveLength(FLOOD);
    expect(all.filter((r) => r.closedByServer)).toHaveLength(FLOOD);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  });
});
