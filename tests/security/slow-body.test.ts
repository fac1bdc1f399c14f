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

  test("a bounded flood of trickling logins from 127.0.0.1: /health keeps answering, the cap holds", async () => {
    const FLOOD = 300;
    const head =
      "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
    const flood: Promise<RawAnswer>[] = [];
    for (let i = 0; i < FLOOD; i++) flood.push(trickle(port, head, { everyMs: 100, max: 40 }));
    // While it runs, /health answers every time, quickly.
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
    expect(Math.max(...healthMs)).toBeLessThan(1000);
    // A normal login from the same address works again once the flood is gone.
    const after = await fetch(`${gw.url}/api/auth/session`);
    expect(after.status).toBe(200);
  });
});
