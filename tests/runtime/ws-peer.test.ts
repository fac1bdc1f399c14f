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
