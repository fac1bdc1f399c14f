/**
 * The outgoing WebSocket seam's handshake deadline runs on the timers it is given (the gateway's
 * clock): against a server that accepts the connection and never answers the upgrade, the connect
 * fails as a timeout exactly when the fake clock passes the deadline, without a real wait.
 */
import { afterAll, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { connectWebSocket } from "../../src/runtime/bun/websocket-client.ts";

// Accepts TCP connections on 127.0.0.1 and never writes a byte.
const silent = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: { data() {}, open() {} },
});
afterAll(() => silent.stop(true));

test("a handshake that never gets an answer fails as a timeout when the deadline passes on the given clock", async () => {
  const clock = new FakeClock(0);
  let result: Awaited<ReturnType<typeof connectWebSocket>> | null = null;
  const pending = connectWebSocket(
    `ws://127.0.0.1:${silent.port}/backend-api/codex/responses`,
    new Headers({ authorization: "Bearer x" }),
    30_000,
    undefined,
    clock,
  ).then((r) => {
    result = r;
    return r;
  });
  await clock.advance(29_999);
  await Bun.sleep(20);
  expect(result).toBeNull();
  await clock.advance(1);
  const r = await pending;
  expect(r).toEqual({ ok: false, status: null, message: "WebSocket handshake timed out", timeout: true });
  expect(clock.pending).toBe(0);
});
