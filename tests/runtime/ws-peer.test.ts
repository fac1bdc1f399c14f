/**
 * The sending side of an accepted WebSocket (src/runtime/bun/serve.ts): frames sent in one
 * event-loop turn go out together (corked), so these pin what must not change with it: every frame
 * arrives, in the order sent, whether sent at once, from separate microtasks (as a turn's events
 * arrive from the upstream) or across event-loop turns; a close sends what is queued first, and so
 * does a server shutdown.
 */
import { describe, expect, test } from "bun:test";
import type { WsPeer, WsSession } from "../../src/core/websocket.ts";
import { listen } from "../../src/runtime/bun/serve.ts";
import { openWs } from "../support/ws-client.ts";

const opts = {
  host: "127.0.0.1",
  port: 0,
  maxRequestBodySize: 1024,
  connectionIdleTimeoutSeconds: 60,
  headersTimeoutSeconds: 10,
  maxPendingConnectionsPerAddress: 8,
};

/** A server whose every socket runs `onMessage` with its peer for each client message. */
function server(onMessage: (peer: WsPeer, text: string) => void) {
  return listen(() => {
    let peer: WsPeer | null = null;
    const session: WsSession = {
      open: (p) => {
        peer = p;
      },
      message: (data) => onMessage(peer!, typeof data === "string" ? data : new TextDecoder().decode(data)),
      close: () => {},
    };
    return { headers: new Headers(), session };
  }, opts);
}

const frame = (i: number) => ({ type: "response.output_text.delta", delta: `token${i} `, i });

async function frames(client: Awaited<ReturnType<typeof openWs>>, n: number) {
  const got: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) got.push(await client.next());
  return got;
}

describe("WebSocket peer: frames sent in one event-loop turn go out together", () => {
  test("frames sent at once, from microtasks and across turns arrive whole and in order", async () => {
    const listening = server((peer, text) => {
      const n = Number(text);
      // 0..n-1 at once; n..2n-1 each from its own microtask; 2n..3n-1 each in a later turn.
      for (let i = 0; i < n; i++) peer.send(JSON.stringify(frame(i)));
      let chain = Promise.resolve();
      for (let i = n; i < 2 * n; i++) chain = chain.then(() => peer.send(JSON.stringify(frame(i))));
      void chain.then(async () => {
        for (let i = 2 * n; i < 3 * n; i++) {
          await new Promise<void>((r) => setImmediate(r));
          peer.send(JSON.stringify(frame(i)));
        }
      });
    });
    try {
      const client = await openWs(`ws://127.0.0.1:${listening.port}/`);
      client.send("40");
      expect(await frames(client, 120)).toEqual(Array.from({ length: 120 }, (_, i) => frame(i)));
      client.close();
    } finally {
      await listening.close(0);
    }
  });

  test("a close right after sends delivers the frames first, then the close code", async () => {
    const listening = server((peer) => {
      for (let i = 0; i < 5; i++) peer.send(JSON.stringify(frame(i)));
      peer.close(4000, "done");
    });
    try {
      const client = await openWs(`ws://127.0.0.1:${listening.port}/`);
      client.send("go");
      expect(await frames(client, 5)).toEqual(Array.from({ length: 5 }, (_, i) => frame(i)));
      expect(await client.closed).toEqual({ code: 4000, reason: "done" });
    } finally {
      await listening.close(0);
    }
  });

  test("a server shutdown sends the frames already queued before its close", async () => {
    let stop: Promise<void> | null = null;
    const listening = server((peer) => {
      for (let i = 0; i < 5; i++) peer.send(JSON.stringify(frame(i)));
      stop = listening.close(0);
    });
    const client = await openWs(`ws://127.0.0.1:${listening.port}/`);
    client.send("go");
    expect(await frames(client, 5)).toEqual(Array.from({ length: 5 }, (_, i) => frame(i)));
    expect((await client.closed).code).toBe(1001);
    await stop;
  });
});

/** The text frames in `bytes` (a server's unmasked frames), and whether a close frame followed. */
function parseFrames(bytes: Buffer): { texts: string[]; rest: number } {
  const texts: string[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    let len = bytes[at + 1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      if (at + 4 > bytes.length) break;
      len = bytes.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (at + 10 > bytes.length) break;
      len = Number(bytes.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (at + head + len > bytes.length) break;
    if ((bytes[at]! & 0x0f) === 1) texts.push(bytes.subarray(at + head, at + head + len).toString());
    at += head + len;
  }
  return { texts, rest: bytes.length - at };
}

describe("WebSocket peer: a client that does not read", () => {
  /** A server whose socket, on any message, sends `turns` event-loop turns of `perTurn` ~1 KB frames. */
  function flooding(turns: number, perTurn: number, closed: (code: number) => void) {
    return listen(() => {
      let peer: WsPeer | null = null;
      let open = true;
      const session: WsSession = {
        open: (p) => {
          peer = p;
        },
        message: () => {
          let i = 0;
          const turn = () => {
            if (!open) return;
            for (let k = 0; k < perTurn; k++) peer!.send(JSON.stringify({ i: i++, pad: "z".repeat(1000) }));
            if (i < turns * perTurn) setImmediate(turn);
          };
          turn();
        },
        close: (code) => {
          open = false;
          closed(code);
        },
      };
      return { headers: new Headers(), session };
    }, opts);
  }

  test("is closed once past the backpressure limit, never kept open with frames dropped", async () => {
    const { connect } = await import("node:net");
    let sessionClosed!: (code: number) => void;
    const sessionCode = new Promise<number>((r) => (sessionClosed = r));
    // 40,000 frames of ~1 KB: ten times the limit, far past what the kernel buffers on loopback.
    const listening = flooding(400, 100, (code) => sessionClosed(code));
    try {
      const chunks: Buffer[] = [];
      const ended = new Promise<void>((resolve) => {
        const s = connect(listening.port, "127.0.0.1", () => {
          // A masked text frame "go" after the upgrade request; then the client stops reading.
          const mask = Buffer.from([1, 2, 3, 4]);
          const payload = Buffer.from("go").map((b, j) => b ^ mask[j % 4]!);
          s.write(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          );
          s.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload]));
          s.pause();
        });
        s.on("data", (d: Buffer) => chunks.push(d));
        s.on("error", () => {});
        s.on("close", () => resolve());
        // Once the server gave up on it, read what did arrive: the connection must end.
        void sessionCode.then(() => s.resume());
      });
      // The session hears the socket closed (1006: no close frame can reach a client not reading).
      expect(await sessionCode).toBe(1006);
      await ended;
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf("\r\n\r\n") + 4);
      const got = parseFrames(body).texts.map((t) => (JSON.parse(t) as { i: number }).i);
      // What arrived is a gapless prefix of what was sent, short of the whole.
      expect(got.length).toBeGreaterThan(0);
      expect(got.length).toBeLessThan(40_000);
      expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i));
    } finally {
      await listening.close(0);
    }
  });

  test("a client that reads gets every frame of a turn larger than the limit", async () => {
    const codes: number[] = [];
    // 6,000 frames of ~1 KB (6 MB, over the 4 MiB limit) across 60 event-loop turns.
    const listening = flooding(60, 100, (code) => codes.push(code));
    try {
      const client = await openWs(`ws://127.0.0.1:${listening.port}/`);
      client.send("go");
      const got: number[] = [];
      for (let i = 0; i < 6000; i++) got.push((await client.next()).i as number);
      expect(got).toEqual(Array.from({ length: 6000 }, (_, i) => i));
      expect(codes).toEqual([]);
      client.close();
      expect((await client.closed).code).toBe(1005);
      expect(codes).toEqual([1005]);
    } finally {
      await listening.close(0);
    }
  });
});
