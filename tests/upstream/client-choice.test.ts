/**
 * Which client carries an upstream call (`CODEX_LB_UPSTREAM_CLIENT`, proxy variables), and what
 * both clients share: a redirect is the answer, never followed; a transport failure is a value.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { http1PoolStats } from "../../src/runtime/bun/http1-client.ts";
import { sendUpstream } from "../../src/upstream/client.ts";

let server: ReturnType<typeof Bun.serve>;
let elsewhere: ReturnType<typeof Bun.serve>;
let elsewhereHits = 0;
beforeAll(() => {
  elsewhere = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      elsewhereHits++;
      return new Response("followed");
    },
  });
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/redirect")
        return new Response("moved", { status: 307, headers: { location: `${elsewhere.url}stolen` } });
      return new Response(
        `${request.method} ${request.headers.get("authorization")} ${await request.text()}`,
      );
    },
  });
});
afterAll(() => {
  server.stop(true);
  elsewhere.stop(true);
});

const headers = () =>
  new Headers({ authorization: "Bearer account-token", "content-type": "application/json" });

/** A POST of `body` with an account's headers, through `client` (the default when absent). */
const post = (url: string, body: string, client?: "auto" | "fetch", connectTimeoutMs = 30_000) =>
  sendUpstream(url, {
    method: "POST",
    headers: headers(),
    body,
    connectTimeoutMs,
    ...(client ? { client } : {}),
  });

test("by default the gateway's own client carries the call: its pool holds the kept-alive connection", async () => {
  const origin = `http://127.0.0.1:${server.port}`;
  for (let i = 0; i < 3; i++) {
    const res = await post(`${origin}/codex/responses`, `{"n":${i}}`);
    if (!res.ok) throw new Error(String(res.failure.message));
    expect(await res.response.text()).toBe(`POST Bearer account-token {"n":${i}}`);
  }
  // Three calls one after another: one connection, back in the pool.
  expect(http1PoolStats(origin)).toEqual({ open: 1, idle: 1 });
});

test("CODEX_LB_UPSTREAM_CLIENT=fetch: Bun's fetch carries the call (the gateway's pool stays empty)", async () => {
  const other = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (r) => new Response(await r.text()),
  });
  try {
    const origin = `http://127.0.0.1:${other.port}`;
    const res = await post(`${origin}/codex/responses`, "via fetch", "fetch");
    if (!res.ok) throw new Error(String(res.failure.message));
    expect(await res.response.text()).toBe("via fetch");
    expect(http1PoolStats(origin)).toEqual({ open: 0, idle: 0 });
  } finally {
    other.stop(true);
  }
});

for (const client of ["auto", "fetch"] as const) {
  test(`${client}: an upstream redirect is the answer; the account's token never reaches the other origin`, async () => {
    const before = elsewhereHits;
    const res = await post(`http://127.0.0.1:${server.port}/redirect`, "{}", client);
    if (!res.ok) throw new Error(String(res.failure.message));
    expect(res.response.status).toBe(307);
    expect(await res.response.text()).toBe("moved");
    expect(elsewhereHits).toBe(before);
  });

  test(`${client}: a refused connection is a transport failure value, not a throw`, async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const res = await post(`http://127.0.0.1:${port}/codex/responses`, "{}", client);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.failure).toMatchObject({ httpStatus: null, errorCode: "transport_error", transport: true });
    expect(res.failure.message).toContain("ECONNREFUSED");
  });

  test(`${client}: no answer before the deadline is a timeout failure`, async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const res = await post(`http://127.0.0.1:${silent.port}/codex/responses`, "{}", client, 50);
      expect(res.ok).toBe(false);
      if (res.ok) return;
      expect(res.failure.errorCode).toBe("timeout");
    } finally {
      silent.stop(true);
    }
  });
}

test("a proxy variable keeps fetch: the gateway's client declines every URL", () => {
  // The environment is read once per process: a fresh one answers.
  const probe = (env: Record<string, string>) => {
    const r = Bun.spawnSync(
      [
        process.execPath,
        "-e",
        `import { http1Serves } from ${JSON.stringify(`${import.meta.dir}/../../src/runtime/bun/http1-client.ts`)}; console.log(http1Serves("https://chatgpt.com/backend-api/codex/responses"), http1Serves("ftp://x/"))`,
      ],
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
    );
    return r.stdout.toString().trim();
  };
  expect(probe({})).toBe("true false");
  expect(probe({ HTTPS_PROXY: "http://127.0.0.1:3128" })).toBe("false false");
  expect(probe({ http_proxy: "http://127.0.0.1:3128" })).toBe("false false");
  expect(probe({ ALL_PROXY: "socks5://127.0.0.1:1080" })).toBe("false false");
});
