/**
 * The upstream client's body handling: a body given as a function is made at the `fetch` call,
 * and `fetch` copies byte bodies when called (what lets the proxy encode into one reused buffer,
 * `encodedAtSend` in src/proxy/payload.ts).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sendUpstream } from "../../src/upstream/client.ts";

let server: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 64 * 1024 * 1024,
    fetch: async (request) => new Response(await request.bytes()),
  });
});
afterAll(() => server.stop(true));

test("a byte body is copied when fetch is called: changing its buffer afterwards changes nothing sent", async () => {
  // Larger than any socket buffer: the body is still being sent after the call returns.
  const bytes = new Uint8Array(8 * 1024 * 1024).fill(0x61);
  let made = 0;
  const pending = sendUpstream(`http://127.0.0.1:${server.port}/`, {
    method: "POST",
    headers: new Headers({ "content-type": "application/octet-stream" }),
    body: () => {
      made++;
      return bytes;
    },
    connectTimeoutMs: 30_000,
  });
  // The function ran within the call, before anything was awaited.
  expect(made).toBe(1);
  bytes.fill(0x62);
  const res = await pending;
  if (!res.ok) throw new Error(String(res.failure.message));
  const echoed = new Uint8Array(await res.response.arrayBuffer());
  expect(echoed.length).toBe(bytes.length);
  expect(echoed.every((b) => b === 0x61)).toBe(true);
});

test("the same over a kept-alive connection: a byte body changed after the call changes nothing sent", async () => {
  const url = `http://127.0.0.1:${server.port}/`;
  const send = (body: () => Uint8Array) =>
    sendUpstream(url, {
      method: "POST",
      headers: new Headers({ "content-type": "application/octet-stream" }),
      body,
      connectTimeoutMs: 30_000,
    });
  // Opens the connection the next call finds idle.
  const warm = await send(() => new Uint8Array([1]));
  if (!warm.ok) throw new Error(String(warm.failure.message));
  await warm.response.arrayBuffer();
  for (const size of [100 * 1024, 8 * 1024 * 1024]) {
    const bytes = new Uint8Array(size).fill(0x61);
    const pending = send(() => bytes);
    bytes.fill(0x62);
    const res = await pending;
    if (!res.ok) throw new Error(String(res.failure.message));
    const echoed = new Uint8Array(await res.response.arrayBuffer());
    expect(echoed.length).toBe(size);
    expect(echoed.every((b) => b === 0x61)).toBe(true);
  }
});

test("a body that cannot be made is the gateway's own failure, not an upstream transport error", async () => {
  let requests = 0;
  const counting = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      requests++;
      return new Response("ok");
    },
  });
  try {
    const pending = sendUpstream(`http://127.0.0.1:${counting.port}/`, {
      method: "POST",
      headers: new Headers(),
      body: () => {
        throw new RangeError("body too long for the buffer");
      },
      connectTimeoutMs: 30_000,
    });
    // Rejected (a fault of the gateway, answered as such), not `{ ok: false }` (which fails over).
    await expect(pending).rejects.toThrow("body too long for the buffer");
    expect(requests).toBe(0);
  } finally {
    counting.stop(true);
  }
});
