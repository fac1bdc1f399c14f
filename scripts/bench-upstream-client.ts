/**
 * `bun scripts/bench-upstream-client.ts`: would an upstream HTTP client that runs on the gateway's own
 * event loop be cheaper than Bun's `fetch` (which hands each request to Bun's HTTP client thread)?
 * 127.0.0.1 only.
 *
 * Three minimal pass-throughs, one process each, in front of the bench's fake upstream
 * (`scripts/bench.ts upstream`), that differ only in the upstream client:
 * - `fetch`: Bun's `fetch` (what `src/upstream/client.ts` uses);
 * - `undici`: the npm `undici` package's `Pool.dispatch` over Bun's node:net, its chunks pushed into a
 *   `ReadableStream`. Bun answers the bare `undici` specifier with a shim of its own (its `Pool`
 *   does nothing), so the real package is loaded from a path: `BENCH_UNDICI=<dir>/node_modules/undici`
 *   (e.g. `bun add undici` in a temp dir); without it that row is left out;
 * - `raw`: a minimal HTTP/1.1 keep-alive client on `Bun.connect` (content-length and chunked answers, an
 *   idle-socket pool per origin, no proxy, TLS, decompression or deadline): a measuring stick only.
 * Each reads the client request's body as text, takes a slot of an N-slot FIFO semaphore (0: none; 8 is
 * what the per-account stream cap does, see scripts/bench-cap.ts), sends the upstream request, and
 * answers with a `ReadableStream` that pulls the upstream answer's body through a reader and frees the
 * slot at its end: the same JS piping for all three, as the gateway reads `response.body`.
 *
 * First the answers are checked: each proxy's bytes for the short and the 1,000-event answer must
 * equal the upstream's own (200 requests each at 16 connections). Then `UC_ROUNDS` (default 5) rounds
 * of `UC_SECONDS` (default 6) s, after `UC_WARM` (default 10) s of warm-up per cell, with the
 * proxies loaded at the same moments (one load generator, 64 connections to each): the short answer
 * with no slots and with `UC_SLOTS` (default 8) slots, and the 1,000-event answer with the slots.
 * Per round and proxy: CPU µs/req of the process (/proc), of its main thread and of Bun's HTTP client
 * thread, and req/s; per round, each client's CPU minus fetch's. Last, latency at one connection:
 * requests one at a time, rotating over direct/fetch/undici/raw (`UC_C1_N`, default 3000, each):
 * p50 minus the direct p50 (the "added p50"), and the median of per-rotation differences from fetch.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";
import {
  type Listening,
  load,
  median,
  processGroup,
  servePassThrough,
  spread,
  statTimes,
  table,
} from "./bench-proc.ts";
import { LONG_MARKER, SHORT_BODY } from "./bench-servers.ts";

const PATH = "/backend-api/codex/responses";
const PAUSE = process.env.UC_PAUSE === "1";
type Kind = "fetch" | "undici" | "raw";

/** An upstream answer as the pass-through sees it: status and a body stream. */
interface Upstream {
  status: number;
  body: ReadableStream<Uint8Array>;
}
type Send = (text: string) => Promise<Upstream>;

/** Bun's fetch. */
function fetchClient(upstream: string): Send {
  const url = `${upstream}${PATH}`;
  return async (text) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: text,
    });
    return { status: res.status, body: res.body! };
  };
}

/** undici's Pool.dispatch, loaded from `dir` (not the bare specifier: Bun shims it). */
function undiciClient(upstream: string, dir: string): Send {
  // biome-ignore lint/suspicious/noExplicitAny: the package is loaded by path, untyped here
  const undici = require(join(dir, "index.js")) as any;
  const pool = new undici.Pool(upstream, { connections: null, pipelining: 1, keepAliveTimeout: 60_000 });
  return (text) =>
    new Promise<Upstream>((resolve, reject) => {
      let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
      // biome-ignore lint/suspicious/noExplicitAny: undici's dispatch controller
      let ctl: any;
      let started = false;
      pool.dispatch(
        {
          origin: upstream,
          path: PATH,
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream" },
          body: text,
        },
        {
          // biome-ignore lint/suspicious/noExplicitAny: undici's dispatch controller
          onRequestStart(c: any) {
            ctl = c;
          },
          onResponseStart(_c: unknown, statusCode: number) {
            started = true;
            const body = new ReadableStream<Uint8Array>({
              start(c) {
                stream = c;
              },
              pull() {
                if (ctl?.paused) ctl.resume();
              },
              cancel() {
                ctl?.abort(new Error("client gone"));
              },
            });
            resolve({ status: statusCode, body });
          },
          onResponseData(c: { pause(): void }, chunk: Uint8Array) {
            stream!.enqueue(chunk);
            if (PAUSE && (stream!.desiredSize ?? 1) <= 0) c.pause();
          },
          onResponseEnd() {
            stream!.close();
          },
          onResponseError(_c: unknown, err: Error) {
            if (!started) reject(err);
            else stream?.error(err);
          },
        },
      );
    });
}

/** One request in flight on a raw socket: the answer's parse state. */
interface Exchange {
  resolve(u: Upstream): void;
  reject(e: Error): void;
  head: Uint8Array | null;
  stream: ReadableStreamDefaultController<Uint8Array> | null;
  /** Bytes of body left (content-length), or -1 for chunked. */
  left: number;
  /** Chunked: bytes left in the current chunk; -1 while a size line is expected; -2 at the trailers. */
  chunkLeft: number;
  /** Chunked: a partial size line or CRLF carried over between reads. */
  carry: string;
  keepAlive: boolean;
}
type RawSocket = Bun.Socket<{ ex: Exchange | null }>;

const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);
function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A minimal HTTP/1.1 keep-alive client on Bun.connect (a measuring stick, not a product). */
function rawClient(upstream: string): Send {
  const u = new URL(upstream);
  const host = u.hostname;
  const port = Number(u.port || 80);
  const idle: RawSocket[] = [];
  const latin1 = new TextDecoder("latin1");
  const enc = new TextEncoder();

  const finish = (s: RawSocket, ex: Exchange) => {
    ex.stream!.close();
    s.data.ex = null;
    if (ex.keepAlive) idle.push(s);
    else s.end();
  };
  /** Feeds body bytes; returns when the answer ended. */
  const body = (s: RawSocket, ex: Exchange, buf: Uint8Array) => {
    if (ex.left >= 0) {
      const take = Math.min(ex.left, buf.length);
      if (take > 0) ex.stream!.enqueue(take === buf.length ? buf : buf.subarray(0, take));
      ex.left -= take;
      if (ex.left === 0) finish(s, ex);
      return;
    }
    let i = 0;
    while (i < buf.length) {
      if (ex.chunkLeft > 0) {
        const take = Math.min(ex.chunkLeft, buf.length - i);
        ex.stream!.enqueue(buf.subarray(i, i + take));
        ex.chunkLeft -= take;
        i += take;
        if (ex.chunkLeft === 0) ex.chunkLeft = -3; // the CRLF after the data
        continue;
      }
      const nl = buf.indexOf(10, i);
      if (nl < 0) {
        ex.carry += latin1.decode(buf.subarray(i));
        return;
      }
      const line = (ex.carry + latin1.decode(buf.subarray(i, nl))).trim();
      ex.carry = "";
      i = nl + 1;
      if (ex.chunkLeft === -3) {
        ex.chunkLeft = -1;
        continue;
      }
      if (ex.chunkLeft === -2) {
        if (line === "") return finish(s, ex);
        continue; // a trailer
      }
      const size = Number.parseInt(line, 16);
      if (Number.isNaN(size)) {
        ex.stream!.error(new Error(`bad chunk size ${JSON.stringify(line)}`));
        s.data.ex = null;
        s.end();
        return;
      }
      ex.chunkLeft = size === 0 ? -2 : size;
    }
  };
  const handlers: Bun.SocketHandler<{ ex: Exchange | null }> = {
    data(s, chunk) {
      const ex = s.data.ex;
      if (!ex) return void s.end();
      if (ex.stream) return body(s, ex, chunk);
      const buf = ex.head ? Buffer.concat([ex.head, chunk]) : chunk;
      const end = indexOf(buf, CRLFCRLF);
      if (end < 0) {
        ex.head = buf;
        return;
      }
      const lines = latin1.decode(buf.subarray(0, end)).split("\r\n");
      const status = Number(lines[0]!.split(" ")[1]);
      let left = -2;
      let keepAlive = true;
      for (let k = 1; k < lines.length; k++) {
        const line = lines[k]!;
        const c = line.indexOf(":");
        const name = line.slice(0, c).toLowerCase();
        const value = line.slice(c + 1).trim();
        if (name === "content-length") left = Number(value);
        else if (name === "transfer-encoding" && value.toLowerCase().includes("chunked")) left = -1;
        else if (name === "connection" && value.toLowerCase() === "close") keepAlive = false;
      }
      if (left === -2) {
        left = 0; // neither: read-to-close answers are not supported by this stick
        keepAlive = false;
      }
      ex.left = left;
      ex.keepAlive = keepAlive;
      ex.resolve({
        status,
        body: new ReadableStream<Uint8Array>({
          start(c) {
            ex.stream = c;
          },
          cancel() {
            s.data.ex = null;
            s.end();
          },
        }),
      });
      const rest = buf.subarray(end + 4);
      if (rest.length > 0 || left === 0) body(s, ex, rest);
    },
    close(s) {
      const ex = s.data.ex;
      const i = idle.indexOf(s);
      if (i >= 0) idle.splice(i, 1);
      if (!ex) return;
      s.data.ex = null;
      const err = new Error("upstream closed the connection");
      if (ex.stream) ex.stream.error(err);
      else ex.reject(err);
    },
    error(s, err) {
      const ex = s.data.ex;
      s.data.ex = null;
      if (ex?.stream) ex.stream.error(err);
      else ex?.reject(err);
    },
  };
  return async (text) => {
    const payload = enc.encode(text);
    const head = enc.encode(
      `POST ${PATH} HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\ncontent-length: ${payload.length}\r\n\r\n`,
    );
    const s =
      idle.pop() ??
      (await Bun.connect<{ ex: Exchange | null }>({
        hostname: host,
        port,
        socket: handlers,
        data: { ex: null },
      }));
    return new Promise<Upstream>((resolve, reject) => {
      s.data.ex = {
        resolve,
        reject,
        head: null,
        stream: null,
        left: 0,
        chunkLeft: -1,
        carry: "",
        keepAlive: true,
      };
      const out = new Uint8Array(head.length + payload.length);
      out.set(head);
      out.set(payload, head.length);
      const n = s.write(out);
      if (n < out.length) s.write(out.subarray(n)); // small bodies: one write; a stick, no drain loop
    });
  };
}

/** Role `proxy <kind> <upstream> <slots>`: the pass-through on one client. */
async function serveProxy(kind: Kind, upstream: string, slots: number): Promise<void> {
  let send: Send;
  if (kind === "fetch") send = fetchClient(upstream);
  else if (kind === "raw") send = rawClient(upstream);
  else send = undiciClient(upstream, process.env.BENCH_UNDICI!);
  servePassThrough(send, slots);
}

/** CPU µs of a process's main thread and of Bun's HTTP client thread, from /proc/PID/task. */
function threadUs(pid: number): { main: number; http: number } {
  const out = { main: 0, http: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue;
    }
    const { name: comm, userUs, sysUs } = statTimes(stat);
    const us = userUs + sysUs;
    if (tid === String(pid)) out.main += us;
    else if (comm === "HTTP Client") out.http += us;
  }
  return out;
}

async function post(url: string, body: string): Promise<Uint8Array> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  if (res.status !== 200) throw new Error(`${url}: status ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function main(): Promise<void> {
  const SLOTS = envNumber("UC_SLOTS", 8);
  const ROUNDS = envNumber("UC_ROUNDS", 5);
  const SECONDS = envNumber("UC_SECONDS", 6);
  const WARM = envNumber("UC_WARM", 10);
  const C1_N = envNumber("UC_C1_N", 3000);
  const undiciDir = process.env.BENCH_UNDICI;
  const kinds: Kind[] = undiciDir ? ["fetch", "undici", "raw"] : ["fetch", "raw"];
  if (undiciDir) {
    const mod = require(join(undiciDir, "index.js"));
    if (
      typeof mod.Pool?.prototype?.dispatch !== "function" ||
      !readFileSync(join(undiciDir, "package.json"), "utf8")
    )
      throw new Error(`BENCH_UNDICI=${undiciDir}: not the undici package`);
    const version = JSON.parse(readFileSync(join(undiciDir, "package.json"), "utf8")).version;
    console.log(`undici ${version} from ${undiciDir} (not Bun's shim of the bare specifier)`);
  } else console.log("BENCH_UNDICI unset: the undici row is left out");
  const procs = processGroup();
  try {
    const upstream = await procs.start(["bun", `${import.meta.dir}/bench.ts`, "upstream"]);
    const start = (kind: Kind, slots: number) =>
      procs.start(["bun", import.meta.path, "proxy", kind, upstream.url, String(slots)]);
    const free = new Map<Kind, Listening>();
    const slotted = new Map<Kind, Listening>();
    for (const k of kinds) {
      free.set(k, await start(k, 0));
      slotted.set(k, await start(k, SLOTS));
    }
    const longBody = JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: LONG_MARKER }] });

    // The answers' bytes must be the upstream's own.
    for (const [name, body] of [
      ["short", SHORT_BODY],
      ["1,000-event", longBody],
    ] as const) {
      const want = await post(`${upstream.url}${PATH}`, body);
      for (const p of [...free.entries(), ...slotted.entries()]) {
        const url = `${p[1].url}${PATH}`;
        let left = 200;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (left-- > 0) {
              const got = await post(url, body);
              if (Buffer.compare(Buffer.from(got), Buffer.from(want)) !== 0)
                throw new Error(`${p[0]}: the ${name} answer differs from the upstream's`);
            }
          }),
        );
      }
      console.log(
        `${name} answer (${want.length} bytes): byte-identical through every proxy (200 requests each)`,
      );
    }

    type Res = { cpu: number; main: number; http: number; rps: number };
    const cell = async (p: Listening, body: string, seconds: number): Promise<Res> => {
      const t0 = threadUs(p.pid);
      const c = await load(`${p.url}${PATH}`, { "content-type": "application/json" }, body, 64, seconds, {
        proxy: p.pid,
        upstream: upstream.pid,
      });
      const t1 = threadUs(p.pid);
      if (c.errors > 0) throw new Error(`${c.errors} errors`);
      return {
        cpu: c.proxyUs!,
        main: (t1.main - t0.main) / c.n,
        http: (t1.http - t0.http) / c.n,
        rps: c.rps,
      };
    };
    const configs = [
      { name: "short answer, c64, no slots", procs: free, body: SHORT_BODY },
      { name: `short answer, c64, ${SLOTS} slots`, procs: slotted, body: SHORT_BODY },
      { name: `1,000-event answer, c64, ${SLOTS} slots`, procs: slotted, body: longBody },
    ];
    for (const cfg of configs) await Promise.all(kinds.map((k) => cell(cfg.procs.get(k)!, cfg.body, WARM)));
    const results = configs.map(() => new Map<Kind, Res[]>(kinds.map((k) => [k, []])));
    for (let round = 0; round < ROUNDS; round++) {
      for (let j = 0; j < configs.length; j++) {
        const i = (j + round) % configs.length;
        const cfg = configs[i]!;
        const rs = await Promise.all(kinds.map((k) => cell(cfg.procs.get(k)!, cfg.body, SECONDS)));
        for (const [n, k] of kinds.entries()) results[i]!.get(k)!.push(rs[n]!);
      }
    }
    console.log(
      `\n${ROUNDS} rounds × ${SECONDS} s, the ${kinds.length} proxies of a row group loaded at the same moments, 64 connections each: median (min–max)`,
    );
    const rows: string[][] = [["cell", "client", "CPU µs/req", "main thread", "HTTP client thread", "req/s"]];
    for (const [i, cfg] of configs.entries()) {
      for (const k of kinds) {
        const rs = results[i]!.get(k)!;
        rows.push([
          cfg.name,
          k,
          spread(rs.map((r) => r.cpu)),
          spread(rs.map((r) => r.main)),
          spread(rs.map((r) => r.http)),
          spread(rs.map((r) => r.rps)),
        ]);
      }
    }
    console.log(table(rows));
    for (const [i, cfg] of configs.entries()) {
      const base = results[i]!.get("fetch")!;
      for (const k of kinds.filter((x) => x !== "fetch")) {
        const d = results[i]!.get(k)!.map((r, n) => r.cpu - base[n]!.cpu);
        const pct = results[i]!.get(k)!.map((r, n) => (100 * (r.cpu - base[n]!.cpu)) / base[n]!.cpu);
        console.log(
          `${cfg.name}: ${k} minus fetch, CPU µs/req per round: ${d.map((x) => x.toFixed(0)).join(", ")} (${pct.map((x) => `${x.toFixed(0)} %`).join(", ")})`,
        );
      }
    }

    // One connection: requests one at a time, rotating over direct and the proxies.
    const targets: [string, string][] = [
      ["direct", `${upstream.url}${PATH}`],
      ...kinds.map((k): [string, string] => [k, `${free.get(k)!.url}${PATH}`]),
    ];
    const once = async (url: string) => {
      const t = performance.now();
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: SHORT_BODY,
      });
      const text = await res.text();
      if (res.status !== 200 || !text.includes("response.completed"))
        throw new Error(`${url}: status ${res.status}`);
      return performance.now() - t;
    };
    for (const [, url] of targets) for (let i = 0; i < 500; i++) await once(url);
    const lat = targets.map(() => [] as number[]);
    for (let i = 0; i < C1_N; i++) {
      for (let j = 0; j < targets.length; j++) {
        const t = (i + j) % targets.length;
        lat[t]!.push(await once(targets[t]![1]));
      }
    }
    const direct = median(lat[0]!);
    console.log(`\nOne connection, ${C1_N} requests each, rotating: direct p50 ${direct.toFixed(3)} ms`);
    for (let t = 1; t < targets.length; t++) {
      const added = median(lat[t]!) - direct;
      const vsFetch =
        t === 1
          ? ""
          : `, minus fetch (median of per-rotation differences) ${(median(lat[t]!.map((x, i) => x - lat[1]![i]!)) * 1000).toFixed(0)} µs`;
      console.log(
        `${targets[t]![0]}: p50 ${median(lat[t]!).toFixed(3)} ms, added p50 ${added.toFixed(3)} ms${vsFetch}`,
      );
    }
  } finally {
    await procs.stop();
  }
}

if (process.argv[2] === "proxy")
  await serveProxy(process.argv[3] as Kind, process.argv[4]!, Number(process.argv[5]));
else await main();
