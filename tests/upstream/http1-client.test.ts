/**
 * The gateway's HTTP/1.1 upstream client (`src/runtime/bun/http1-client.ts`) against a raw TCP
 * server that writes exactly the bytes each case needs, side by side with Bun's `fetch` where both
 * must agree (the same answer bytes, the same refusals).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { http1Fetch, http1PoolStats } from "../../src/runtime/bun/http1-client.ts";
import { chunkOf, gzipInTwo } from "../support/http-bytes.ts";
import { selfSignedCert, tlsServer as tlsServerOf } from "../support/tls-cert.ts";

interface Req {
  readonly head: string;
  readonly lines: string[];
  readonly body: Uint8Array;
}
type Sock = Bun.Socket<{ buf: Uint8Array; conn: number }>;
/** What the raw server does with each request: writes bytes on `s` (and may end it). */
type Answer = (s: Sock, req: Req) => void | Promise<void>;

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** A raw HTTP/1.1 server on 127.0.0.1: parses requests (content-length bodies) and calls `answer`. */
function rawServer(answer: Answer) {
  const state = { connections: 0, closed: 0, requests: [] as Req[] };
  const enc = new TextEncoder();
  const server = Bun.listen<{ buf: Uint8Array; conn: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: new Uint8Array(0), conn: ++state.connections };
      },
      async data(s, chunk) {
        const joined = new Uint8Array(s.data.buf.length + chunk.length);
        joined.set(s.data.buf);
        joined.set(chunk, s.data.buf.length);
        s.data.buf = joined;
        for (;;) {
          const text = new TextDecoder("latin1").decode(s.data.buf);
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = text.slice(0, end);
          const lines = head.split("\r\n");
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (s.data.buf.length < end + 4 + len) return;
          const req = { head, lines, body: s.data.buf.slice(end + 4, end + 4 + len) };
          s.data.buf = s.data.buf.slice(end + 4 + len);
          state.requests.push(req);
          await answer(s, req);
        }
      },
      close() {
        state.closed++;
      },
    },
  });
  stops.push(() => server.stop(true));
  const url = `http://127.0.0.1:${server.port}`;
  return { url, state, enc };
}

const get = (url: string, init: Partial<Parameters<typeof http1Fetch>[1]> = {}) =>
  http1Fetch(url, { method: "GET", headers: new Headers(), ...init });

const te = new TextEncoder();
const SSE = 'event: a\ndata: {"n":1}\n\nevent: b\ndata: {"n":2}\n\n';

/** Writes `bytes` in pieces of `size`, each its own write (a separate TCP segment most of the time). */
async function trickle(s: Sock, bytes: Uint8Array, size: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += size) {
    s.write(bytes.subarray(i, i + size));
    s.flush();
    await Bun.sleep(0);
  }
}

/** Reads a body to its end, as bytes. */
async function bytesOf(r: Response): Promise<Uint8Array> {
  return new Uint8Array(await r.arrayBuffer());
}

function chunked(body: string, pieces: number[]): string {
  let out = "";
  let i = 0;
  for (const n of pieces) {
    out += `${n.toString(16)}\r\n${body.slice(i, i + n)}\r\n`;
    i += n;
  }
  return `${out}0\r\n\r\n`;
}

describe("answers", () => {
  test("content-length, chunked (with extensions and trailers) and read-until-close bodies", async () => {
    const srv = rawServer((s, req) => {
      const path = req.lines[0]!.split(" ")[1];
      if (path === "/length") s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${SSE.length}\r\n\r\n${SSE}`);
      else if (path === "/chunked") {
        const body = chunked(SSE, [5, 20, SSE.length - 25]).replace("5\r\n", "5;ext=1\r\n");
        s.write(
          `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${body.slice(0, -2)}x-trailer: 1\r\n\r\n`,
        );
      } else {
        s.write(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n${SSE}`);
        s.end();
      }
    });
    for (const path of ["/length", "/chunked", "/close"]) {
      const r = await get(srv.url + path);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(SSE);
      const f = await fetch(srv.url + path);
      expect(await f.text()).toBe(SSE);
    }
  });

  test("a chunked answer cut at every byte boundary arrives whole", async () => {
    const wire = te.encode(
      `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${chunked(SSE, [7, 1, 30, SSE.length - 38])}`,
    );
    for (let cut = 1; cut < wire.length; cut += 3) {
      const srv = rawServer((s) => {
        s.write(wire.subarray(0, cut));
        s.flush();
        // The rest on a later turn: the client sees two reads.
        setImmediate(() => s.write(wire.subarray(cut)));
      });
      const r = await get(srv.url);
      expect(await r.text()).toBe(SSE);
    }
  });

  test("the same bytes reach the reader however the server writes them (one byte at a time)", async () => {
    const wire = te.encode(
      `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${chunked(SSE, [3, SSE.length - 3])}`,
    );
    const srv = rawServer((s) => trickle(s, wire, 1));
    expect(await (await get(srv.url)).text()).toBe(SSE);
  });

  test("informational answers are skipped; 204, 304 and HEAD have no body and keep the connection", async () => {
    const srv = rawServer((s, req) => {
      const [method, path] = req.lines[0]!.split(" ");
      if (path === "/info")
        s.write(
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        );
      else if (path === "/204") s.write("HTTP/1.1 204 No Content\r\n\r\n");
      else if (path === "/304") s.write("HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n");
      else if (method === "HEAD") s.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
      else s.write("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone");
    });
    const info = await get(`${srv.url}/info`);
    expect([info.status, await info.text()]).toEqual([200, "ok"]);
    const none = await get(`${srv.url}/204`);
    expect([none.status, await none.text()]).toEqual([204, ""]);
    const same = await get(`${srv.url}/304`);
    expect([same.status, await same.text(), same.headers.get("etag")]).toEqual([304, "", "x"]);
    const head = await http1Fetch(`${srv.url}/x`, { method: "HEAD", headers: new Headers() });
    expect([head.status, head.headers.get("content-length"), await head.text()]).toEqual([200, "1000", ""]);
    expect(await (await get(`${srv.url}/last`)).text()).toBe("done");
    expect(srv.state.connections).toBe(1);
  });

  test("repeated headers come out as fetch gives them", async () => {
    const srv = rawServer(
      (s) =>
        void s.write(
          "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nx-a: 1\r\nx-a: 2\r\nx-ratelimit: 5\r\ncontent-length: 0\r\n\r\n",
        ),
    );
    const a = await get(srv.url);
    const b = await fetch(srv.url);
    for (const r of [a, b]) {
      expect(r.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
      expect(r.headers.get("x-a")).toBe("1, 2");
      expect(r.headers.get("x-ratelimit")).toBe("5");
    }
  });

  test("gzip, deflate, br and zstd answers are decoded as fetch decodes them", async () => {
    const text = SSE.repeat(50);
    const zlib = await import("node:zlib");
    const zstd = (zlib as { zstdCompressSync?: (b: Uint8Array) => Uint8Array }).zstdCompressSync;
    const bodies: Record<string, Uint8Array> = {
      gzip: gzipSync(text),
      deflate: deflateSync(text),
      br: brotliCompressSync(text),
      ...(zstd ? { zstd: zstd(te.encode(text)) } : {}),
    };
    const srv = rawServer((s, req) => {
      const coding = req.lines[0]!.split(" ")[1]!.slice(1);
      const body = bodies[coding]!;
      s.write(`HTTP/1.1 200 OK\r\ncontent-encoding: ${coding}\r\ncontent-length: ${body.length}\r\n\r\n`);
      s.write(body);
    });
    for (const coding of Object.keys(bodies)) {
      expect(await (await get(`${srv.url}/${coding}`)).text()).toBe(text);
      expect(await (await fetch(`${srv.url}/${coding}`)).text()).toBe(text);
    }
  });

  test("a gzip stream is decoded as it comes: the first event before the server writes the rest", async () => {
    let release: () => void = () => {};
    const rest = new Promise<void>((r) => {
      release = r;
    });
    // One gzip stream, sync-flushed after the first event: its bytes so far decode to that event.
    const [part1, part2] = await gzipInTwo("event: a\ndata: 1\n\n", "event: b\ndata: 2\n\n");
    const chunk = chunkOf;
    const srv = rawServer(async (s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n");
      s.write(chunk(part1));
      await rest;
      s.write(chunk(part2));
      s.write("0\r\n\r\n");
    });
    const res = await get(srv.url);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("event: a");
    release();
    let all = new TextDecoder().decode(first.value);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      all += new TextDecoder().decode(value);
    }
    expect(all).toBe("event: a\ndata: 1\n\nevent: b\ndata: 2\n\n");
  });

  test("4 MB written in 64 KB pieces, read only after the server is done: identical bytes", async () => {
    const big = new Uint8Array(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
    let written: () => void = () => {};
    const done = new Promise<void>((r) => {
      written = r;
    });
    const srv = rawServer(async (s) => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`);
      let i = 0;
      const pump = () => {
        while (i < big.length) {
          const n = s.write(big.subarray(i, Math.min(big.length, i + 65536)));
          i += n;
          if (n === 0) return;
        }
        written();
      };
      pump();
      // The socket takes what fits; the rest on later turns.
      while (i < big.length) {
        await Bun.sleep(1);
        pump();
      }
    });
    const res = await get(srv.url);
    await done;
    const got = await bytesOf(res);
    expect(got.length).toBe(big.length);
    expect(Buffer.compare(got, big)).toBe(0);
  });
});

describe("requests", () => {
  test("method, path and query, the caller's headers and the body bytes arrive as given", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    const bodies: (string | Uint8Array)[] = [
      "héllo wörld ✓",
      new Uint8Array([0, 1, 2, 255]),
      "x".repeat(1024 * 1024),
    ];
    for (const body of bodies) {
      const r = await http1Fetch(`${srv.url}/codex/responses?client_version=1.2&a=%20b`, {
        method: "POST",
        headers: new Headers({ authorization: "Bearer t", "x-codex-turn-metadata": '{"a":1}' }),
        body,
      });
      await r.arrayBuffer();
      const req = srv.state.requests.at(-1)!;
      expect(req.lines[0]).toBe("POST /codex/responses?client_version=1.2&a=%20b HTTP/1.1");
      expect(req.lines).toContain(`Host: 127.0.0.1:${new URL(srv.url).port}`);
      expect(req.lines).toContain("authorization: Bearer t");
      expect(req.lines).toContain('x-codex-turn-metadata: {"a":1}');
      const expected = typeof body === "string" ? te.encode(body) : body;
      expect(Buffer.compare(req.body, expected)).toBe(0);
    }
    await (await http1Fetch(srv.url, { method: "POST", headers: new Headers() })).arrayBuffer();
    expect(srv.state.requests.at(-1)!.lines).toContain("Content-Length: 0");
  });

  test("the caller cannot smuggle framing headers: the client writes its own", async () => {
    const srv = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    const r = await http1Fetch(srv.url, {
      method: "POST",
      headers: new Headers({
        "content-length": "1",
        "transfer-encoding": "chunked",
        host: "evil",
        connection: "close",
      }),
      body: "abc",
    });
    await r.arrayBuffer();
    const lines = srv.state.requests[0]!.lines.map((l) => l.toLowerCase());
    expect(lines.filter((l) => l.startsWith("content-length"))).toEqual(["content-length: 3"]);
    expect(lines.some((l) => l.startsWith("transfer-encoding"))).toBe(false);
    expect(lines.filter((l) => l.startsWith("host"))).toEqual([`host: 127.0.0.1:${new URL(srv.url).port}`]);
    expect(Buffer.from(srv.state.requests[0]!.body).toString()).toBe("abc");
  });
});

describe("connections", () => {
  test("20 calls one after another use one kept-alive connection; `connection: close` opens a new one", async () => {
    let n = 0;
    const srv = rawServer((s) => {
      n++;
      const close = n === 10;
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${close ? "connection: close\r\n" : ""}\r\nok`);
      if (close) s.end();
    });
    for (let i = 0; i < 20; i++) expect(await (await get(srv.url)).text()).toBe("ok");
    expect(srv.state.connections).toBe(2);
    expect(http1PoolStats(srv.url)).toEqual({ open: 1, idle: 1 });
  });

  test("a kept-alive connection the server closed while idle: the next call still succeeds", async () => {
    const srv = rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      // The server drops the connection right after answering (keep-alive advertised).
      s.end();
    });
    for (let i = 0; i < 5; i++) expect(await (await get(srv.url)).text()).toBe("ok");
  });

  /** Answers "ok", but closes the connection on the second request without a byte of an answer. */
  const closingSecond = () => {
    let n = 0;
    return rawServer((s) => {
      if (++n === 2) return void s.terminate();
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
  };

  test("a kept-alive connection closed as the request goes out is retried once on a fresh one", async () => {
    const srv = closingSecond();
    expect(await (await get(srv.url)).text()).toBe("ok");
    expect(await (await get(srv.url)).text()).toBe("ok");
    expect(srv.state.connections).toBe(2);
    expect(srv.state.requests.length).toBe(3);
  });

  test("a body valid only during the call (a reused buffer): the bytes sent are the call's, a retry makes them anew", async () => {
    const srv = closingSecond();
    const buffer = new Uint8Array(300 * 1024);
    let remade = 0;
    const call = (fill: number) => {
      buffer.fill(fill);
      const pending = http1Fetch(srv.url, {
        method: "POST",
        headers: new Headers(),
        body: buffer,
        remakeBody: () => {
          remade++;
          return buffer.fill(fill);
        },
      });
      // The caller reuses its buffer at once.
      buffer.fill(0x7a);
      return pending;
    };
    // A new connection (the call copies the body), then a kept-alive one the server closes (retried
    // on a new one with the bytes made anew), then a kept-alive one (written within the call).
    for (const fill of [0x61, 0x62, 0x63]) expect(await (await call(fill)).text()).toBe("ok");
    expect(srv.state.connections).toBe(2);
    expect(remade).toBe(1);
    const sent = srv.state.requests.map((r) => String.fromCharCode(r.body[0]!, r.body.at(-1)!));
    expect(sent).toEqual(["aa", "bb", "bb", "cc"]);
    for (const r of srv.state.requests) expect(r.body.length).toBe(buffer.length);
    for (const r of srv.state.requests) expect(new Set(r.body).size).toBe(1);
  });

  test("200 calls at once each get their own answer", async () => {
    const srv = rawServer((s, req) => {
      const tag = req.lines[0]!.split(" ")[1]!.slice(1);
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${tag.length}\r\n\r\n${tag}`);
    });
    const tags = Array.from({ length: 200 }, (_, i) => `t${i}`);
    const got = await Promise.all(tags.map(async (t) => (await get(`${srv.url}/${t}`)).text()));
    expect(got).toEqual(tags);
  });
});

describe("failures", () => {
  const refusals = async (srvUrl: string) => {
    const a = await get(srvUrl).then(
      async (r) => ({
        ok: true as const,
        body: await r.text().then(
          () => "read",
          (e: Error) => `body: ${e.name}`,
        ),
      }),
      (e: Error) => ({ ok: false as const, name: e.name, code: (e as { code?: string }).code }),
    );
    return a;
  };

  test("connection refused rejects with a TypeError carrying ECONNREFUSED, as fetch does", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const url = `http://127.0.0.1:${l.port}/`;
    l.stop(true);
    const mine = await get(url).catch((e) => e);
    const theirs = await fetch(url).catch((e) => e);
    for (const e of [mine, theirs]) {
      expect(e).toBeInstanceOf(TypeError);
      expect(e.code).toBe("ECONNREFUSED");
    }
  });

  test("closed before any answer: rejects; closed mid-body: reading the body fails (never a short body)", async () => {
    const cases: Record<string, (s: Sock) => void> = {
      "/nothing": (s) => void s.end(),
      "/length": (s) => {
        s.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part");
        s.end();
      },
      "/chunked": (s) => {
        s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
        s.end();
      },
    };
    const srv = rawServer((s, req) => cases[req.lines[0]!.split(" ")[1]!]!(s));
    expect(await refusals(`${srv.url}/nothing`)).toMatchObject({ ok: false, name: "TypeError" });
    for (const path of ["/length", "/chunked"]) {
      const r = await get(srv.url + path);
      expect(r.status).toBe(200);
      await expect(r.text()).rejects.toThrow();
      // fetch agrees: no silent short body.
      const f = await fetch(srv.url + path);
      await expect(f.text()).rejects.toThrow();
    }
  });

  test("malformed status line, header, chunk size, two content-lengths, a 65 KB header block: errors, no hang", async () => {
    const cases: Record<string, string> = {
      "/status": "HTTP/1.1 two hundred\r\n\r\n",
      "/garbage": "SSH-2.0-OpenSSH\r\n\r\n",
      "/header": "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
      "/fold": "HTTP/1.1 200 OK\r\nx-a: 1\r\n continued\r\ncontent-length: 0\r\n\r\n",
      "/lengths": "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
      "/bigheaders": `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(66 * 1024)}\r\n\r\n`,
    };
    const srv = rawServer((s, req) => {
      const path = req.lines[0]!.split(" ")[1]!;
      if (path === "/chunk") {
        s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
        return;
      }
      s.write(cases[path]!);
    });
    for (const path of Object.keys(cases)) {
      const e = await get(srv.url + path).catch((x) => x);
      expect(e, path).toBeInstanceOf(TypeError);
    }
    const r = await get(`${srv.url}/chunk`);
    await expect(r.text()).rejects.toThrow(/chunk size/);
    // The process and the pool are fine: a good call after all that.
    const ok = rawServer((s) => void s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    expect(await (await get(ok.url)).text()).toBe("ok");
  });

  test("an answer written while the request body is still going out (413 and close) does not hang", async () => {
    const srv = rawServer(() => {});
    // Answer at the first bytes, before the body is read.
    const early = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s) {
          s.write("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbig");
          s.end();
        },
      },
    });
    stops.push(() => early.stop(true));
    void srv;
    const outcome = await http1Fetch(`http://127.0.0.1:${early.port}/`, {
      method: "POST",
      headers: new Headers(),
      body: new Uint8Array(16 * 1024 * 1024),
    }).then(
      async (r) => `status ${r.status} ${await r.text().catch(() => "")}`,
      (e: Error) => `rejected ${e.name}`,
    );
    expect(outcome).toMatch(/^(status 413|rejected TypeError)/);
  });
  test("an answer that ends before its request was all written: the connection is not reused", async () => {
    const firsts: string[] = [];
    const server = Bun.listen<{ first: boolean }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { first: true };
        },
        data(s, chunk) {
          if (!s.data.first) return;
          s.data.first = false;
          firsts.push(new TextDecoder("latin1").decode(chunk.subarray(0, 12)));
          // Answers at once, keep-alive, without reading the 16 MB body.
          s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        },
      },
    });
    stops.push(() => server.stop(true));
    const url = `http://127.0.0.1:${server.port}`;
    const early = await http1Fetch(`${url}/first`, {
      method: "POST",
      headers: new Headers(),
      body: new Uint8Array(16 * 1024 * 1024),
    });
    expect(await early.text()).toBe("ok");
    expect(await (await get(`${url}/second`)).text()).toBe("ok");
    // The second request opened its own connection and starts clean there.
    expect(firsts).toEqual(["POST /first ", "GET /second "]);
  });
});

describe("aborts", () => {
  test("aborted before the call: rejects with the signal's reason, nothing is sent", async () => {
    const srv = rawServer(() => {});
    const c = new AbortController();
    const reason = new Error("client left");
    c.abort(reason);
    await expect(get(srv.url, { signal: c.signal })).rejects.toBe(reason);
    expect(srv.state.requests.length).toBe(0);
  });

  test("aborted while waiting for headers: rejects with the reason (a TimeoutError stays one)", async () => {
    let arrived: () => void = () => {};
    const got = new Promise<void>((r) => {
      arrived = r;
    });
    const srv = rawServer(() => arrived());
    const c = new AbortController();
    const pending = get(srv.url, { signal: c.signal });
    await got;
    c.abort(new DOMException("upstream did not answer in time", "TimeoutError"));
    const e = await pending.catch((x) => x);
    expect(e).toBeInstanceOf(DOMException);
    expect(e.name).toBe("TimeoutError");
    expect(http1PoolStats(srv.url).open).toBe(0);
  });

  /**
   * A server that answers every request with `bytes` (the start of an answer whose end never
   * comes); `closed` settles when the client closes a connection, `conns` counts them.
   */
  const unfinished = (bytes: string) => {
    let closed: () => void = () => {};
    const state = { conns: 0, closed: new Promise<void>((r) => (closed = r)), url: "" };
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open() {
          state.conns++;
        },
        data(s) {
          s.write(bytes);
        },
        close() {
          closed();
        },
      },
    });
    stops.push(() => server.stop(true));
    state.url = `http://127.0.0.1:${server.port}`;
    return state;
  };

  test("aborted mid-body: the reader fails, the server sees its socket closed, the socket is not reused", async () => {
    const srv = unfinished("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    const url = srv.url;
    const c = new AbortController();
    const res = await get(url, { signal: c.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
    c.abort(new Error("client left"));
    await expect(reader.read()).rejects.toThrow("client left");
    await srv.closed;
    expect(http1PoolStats(url)).toEqual({ open: 0, idle: 0 });
    expect(srv.conns).toBe(1);
  });

  test("an open answer does not keep its request's bytes alive (a long Codex history)", async () => {
    // The server takes the whole request, then answers with one chunk and leaves the body open.
    const SIZE = 3 * 1024 * 1024;
    let received = 0;
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, chunk) {
          received += chunk.length;
          if (received >= SIZE)
            s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
        },
      },
    });
    stops.push(() => server.stop(true));
    const c = new AbortController();
    const res = await http1Fetch(`http://127.0.0.1:${server.port}/`, {
      method: "POST",
      headers: new Headers(),
      body: "x".repeat(SIZE),
      signal: c.signal,
    });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
    Bun.gc(true);
    // Byte arrays of at least the body's size still reachable while the answer is open: none.
    const snap = Bun.generateHeapSnapshot() as unknown as { nodes: number[]; nodeClassNames: string[] };
    const big: string[] = [];
    for (let i = 0; i < snap.nodes.length; i += 4) {
      const cls = snap.nodeClassNames[snap.nodes[i + 2]!]!;
      if (/Uint8Array|ArrayBuffer|Buffer/.test(cls) && snap.nodes[i + 1]! >= SIZE)
        big.push(`${cls} ${snap.nodes[i + 1]}`);
    }
    expect(big).toEqual([]);
    c.abort(new Error("done"));
    await expect(reader.read()).rejects.toThrow("done");
  });

  test("a reader that cancels the body closes the connection (no half-read socket back in the pool)", async () => {
    const srv = unfinished("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npart");
    const url = srv.url;
    const res = await get(url);
    await res.body!.cancel();
    await srv.closed;
    expect(http1PoolStats(url)).toEqual({ open: 0, idle: 0 });
  });
});

describe("TLS", () => {
  const local = selfSignedCert("local", "IP:127.0.0.1,DNS:localhost");
  const other = selfSignedCert("other", "DNS:example.invalid");

  const tlsServer = (pair: { key: string; cert: string }) => tlsServerOf(pair, stops);

  test("an untrusted certificate is refused before a byte of the request (its token) is written", async () => {
    const srv = tlsServer(local);
    const headers = new Headers({ authorization: "Bearer account-token" });
    const mine = await http1Fetch(srv.url, { method: "GET", headers }).catch((e) => e);
    const theirs = await fetch(srv.url, { headers }).catch((e) => e);
    for (const e of [mine, theirs]) {
      expect(e).toBeInstanceOf(TypeError);
      expect(e.code).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    }
    expect(srv.seen).toEqual([]);
  });

  test("a trusted certificate (tls.ca) is served, by address and by name; keep-alive works over TLS", async () => {
    const srv = tlsServer(local);
    for (const url of [srv.url, `https://localhost:${srv.port}/`, srv.url]) {
      const r = await http1Fetch(url, { method: "GET", headers: new Headers(), tls: { ca: local.cert } });
      expect(await r.text()).toBe("secret answer");
    }
    expect(http1PoolStats(srv.url.slice(0, -1)).open).toBe(1);
  });

  test("a certificate for another name is refused even from a trusted CA", async () => {
    const srv = tlsServer(other);
    const e = await http1Fetch(srv.url, {
      method: "GET",
      headers: new Headers({ authorization: "Bearer account-token" }),
      tls: { ca: other.cert },
    }).catch((x) => x);
    expect(e).toBeInstanceOf(TypeError);
    expect(String(e.code)).toMatch(/ALTNAME|HOSTNAME|CERT/);
    expect(srv.seen).toEqual([]);
  });
});
