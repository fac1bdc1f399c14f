/**
 * What the benchmark scripts share about the processes they measure: CPU time and memory from
 * /proc, starting a role (`bun scripts/bench.ts upstream|gateway|…`, or any command that prints
 * `PORT <n>` and, for a gateway, `KEY <key>`) and waiting until it listens, the bench's load
 * generator and how its tables are printed. 127.0.0.1 only.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { withAllocatorEnv } from "../src/runtime/bun/start-env.ts";

const TICK_US = 1e6 / 100; // USER_HZ: /proc/PID/stat counts CPU in 1/100 s on Linux

/**
 * The name and the user and system CPU µs of a /proc `stat` file's text (a process's, or a
 * thread's under /proc/PID/task).
 */
export function statTimes(stat: string): { name: string; userUs: number; sysUs: number } {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5) (utime, stime); the slice starts at field 3.
  return {
    name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
    userUs: Number(fields[11]) * TICK_US,
    sysUs: Number(fields[12]) * TICK_US,
  };
}

/** CPU time (user + system) a process has used so far, in µs. */
export function cpuUs(pid: number): number {
  const t = statTimes(readFileSync(`/proc/${pid}/stat`, "utf8"));
  return t.userUs + t.sysUs;
}

/** A /proc/PID/status field in MB (VmRSS, VmHWM). */
export function statusMb(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export interface Listening {
  readonly proc: ReturnType<typeof Bun.spawn>;
  readonly pid: number;
  readonly url: string;
  /** The API key a bench gateway printed (null for other roles). */
  readonly key: string | null;
  /** SIGTERM, then SIGKILL after 5 s. */
  kill(): Promise<void>;
}

/**
 * Runs `cmd` (in `cwd`, with `env`: the script's own by default) and waits (up to 60 s) until it
 * prints `PORT <n>`. Every process a bench measures this way (fake upstream, pass-through, gateway)
 * starts with the allocator setting `codex-lb serve` gives itself (src/runtime/bun/start-env.ts),
 * unless `env` sets the variable: both proxies run as tuned as a user's gateway.
 */
export async function spawnListening(
  cmd: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; stderr?: "inherit" | "pipe" } = {},
): Promise<Listening> {
  const proc = Bun.spawn(cmd, {
    stdout: "pipe",
    stderr: opts.stderr ?? "inherit",
    env: withAllocatorEnv(opts.env ?? process.env),
    cwd: opts.cwd,
  });
  const kill = () => stopProcess(proc);
  const reader = proc.stdout.getReader();
  const name = cmd.slice(1).join(" ");
  let buf = "";
  const deadline = performance.now() + 60_000;
  try {
    while (!/PORT (\d+)/.test(buf)) {
      const r = await Promise.race([
        reader.read(),
        Bun.sleep(Math.max(0, deadline - performance.now())).then(() => null),
      ]);
      if (r === null) throw new Error(`${name} did not start`);
      if (r.done) throw new Error(`${name} exited before listening`);
      buf += new TextDecoder().decode(r.value);
    }
  } catch (e) {
    await kill(); // no orphan when it does not come up
    throw e;
  }
  reader.releaseLock();
  return {
    proc,
    pid: proc.pid,
    url: `http://127.0.0.1:${/PORT (\d+)/.exec(buf)![1]}`,
    key: /KEY (\S+)/.exec(buf)?.[1] ?? null,
    kill,
  };
}

/** Processes a script starts one after another and stops together at its end. */
export interface ProcessGroup {
  /** {@link spawnListening} with `env` added to the script's own; the process is kept to stop. */
  start(cmd: string[], env?: Record<string, string>): Promise<Listening>;
  /** Stops every process started, the last started first. */
  stop(): Promise<void>;
}

export function processGroup(): ProcessGroup {
  const started: Listening[] = [];
  return {
    async start(cmd, env = {}) {
      const p = await spawnListening(cmd, { env: { ...process.env, ...env } });
      started.push(p);
      return p;
    },
    async stop() {
      for (const p of started.splice(0).reverse()) await p.kill();
    },
  };
}

/**
 * The checkouts a script measures, from its arguments, as absolute paths; with fewer than `least`,
 * prints `usage: <usage>` and exits with 2.
 */
export function checkoutArgs(usage: string, least = 1): string[] {
  const roots = process.argv.slice(2).map((p) => resolve(p));
  if (roots.length < least) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return roots;
}

/** The two checkouts a pair script (bench-c1-pair, bench-c64-pair, bench-ws-pair) compares. */
export function pairCheckouts(usage: string): [string, string] {
  const [a, b] = checkoutArgs(usage, 2);
  return [a as string, b as string];
}

/** Starts a role of the checkout at `root` (`bun [bunFlags] <root>/scripts/bench.ts <args>`). */
export function spawnCheckoutRole(root: string, args: string[], bunFlags: string[] = []): Promise<Listening> {
  return spawnListening(checkoutRole(root, args, bunFlags));
}

/** The command of a role of the checkout at `root` (see {@link spawnCheckoutRole}). */
function checkoutRole(root: string, args: string[], bunFlags: string[] = []): string[] {
  return ["bun", ...bunFlags, `${root}/scripts/bench.ts`, ...args];
}

/** A pair script's processes: A's fake upstream and a gateway role of each checkout in front of it. */
export interface Pair {
  readonly upstream: Listening;
  readonly gateways: [Listening, Listening];
  /** Stops all three (gateways first). */
  kill(): Promise<void>;
}

/**
 * Starts A's `upstream` role, then A's and B's `gateway` role (`accounts` accounts, default one) in front
 * of it; if any start fails, the ones already started are stopped before the error is thrown. `bFlags` are bun
 * flags for gateway B (e.g. `--cpu-prof`).
 */
export async function startPair(a: string, b: string, bFlags: string[] = [], accounts = 1): Promise<Pair> {
  const procs = processGroup();
  try {
    const upstream = await procs.start(checkoutRole(a, ["upstream"]));
    const ga = await procs.start(checkoutRole(a, ["gateway", upstream.url, String(accounts)]));
    const gb = await procs.start(checkoutRole(b, ["gateway", upstream.url, String(accounts)], bFlags));
    return { upstream, gateways: [ga, gb], kill: procs.stop };
  } catch (e) {
    await procs.stop();
    throw e;
  }
}

/**
 * One timed request through a gateway: posts `body` to its `/backend-api/codex/responses` with its
 * key, reads the whole answer, and returns the wall time in ms; throws unless the status is 200 and
 * the stream has `response.completed`.
 */
export async function timedResponse(g: Listening, body: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${g.url}/backend-api/codex/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${g.key}` },
    body,
  });
  const text = await res.text();
  if (res.status !== 200 || !text.includes("response.completed")) throw new Error(`status ${res.status}`);
  return performance.now() - t;
}

/**
 * `n` requests of `body` through a gateway over `conns` connections, one after another on each
 * (see {@link timedResponse}: throws unless each is 200 with `response.completed`).
 */
export async function requestsOver(g: Listening, body: string, n: number, conns: number): Promise<void> {
  let left = n;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (left-- > 0) await timedResponse(g, body);
    }),
  );
}

/** One load cell: `n` requests from `concurrency` clients for a fixed time. */
export interface Cell {
  n: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU µs per request of the proxy process (null for direct). */
  proxyUs: number | null;
  upstreamUs: number;
}

/**
 * The bench's load generator: `concurrency` clients each POST `body` to `url` back to back for
 * `seconds`; a request counts as an error unless it answers 200 with `response.completed`. CPU per
 * request of the proxy (null: none) and the upstream from /proc over the same interval.
 */
export async function load(
  url: string,
  headers: Record<string, string>,
  body: string,
  concurrency: number,
  seconds: number,
  pids: { proxy: number | null; upstream: number },
): Promise<Cell> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const t = performance.now();
      try {
        const res = await fetch(url, { method: "POST", headers, body });
        const text = await res.text();
        if (res.status !== 200 || !text.includes("response.completed")) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
    }
  };
  const cpu0 = pids.proxy === null ? 0 : cpuUs(pids.proxy);
  const up0 = cpuUs(pids.upstream);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const n = latencies.length;
  const proxyUs = pids.proxy === null ? null : (cpuUs(pids.proxy) - cpu0) / n;
  const upstreamUs = (cpuUs(pids.upstream) - up0) / n;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(n - 1, Math.floor(p * n))] ?? 0;
  return { n, rps: n / elapsed, p50: q(0.5), p99: q(0.99), errors, proxyUs, upstreamUs };
}

/** The median (the mean of the middle two for an even count). */
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** "median (min–max)" of `xs`, `digits` decimals. */
export const spread = (xs: number[], digits = 0) => {
  const m = median(xs).toFixed(digits);
  if (xs.length < 2) return m;
  return `${m} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
};

/** A Markdown table, columns padded; `rows[0]` is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.slice(1).map(line),
  ].join("\n");
}

/** Stops a spawned process: SIGTERM, then SIGKILL if it has not exited after 5 s. */
export async function stopProcess(proc: Pick<Subprocess, "kill" | "exited">): Promise<void> {
  proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(5000)]);
  proc.kill("SIGKILL");
}

/**
 * An n-slot FIFO semaphore (0: no limit): `acquire` gives a slot at once (undefined) or a promise of
 * one; `release` hands the slot to the oldest waiter, as a lease does, or frees it.
 */
export function fifoSlots(slots: number): { acquire(): Promise<void> | undefined; release(): void } {
  let inUse = 0;
  const waiting: (() => void)[] = [];
  return {
    acquire() {
      if (slots === 0 || inUse < slots) {
        inUse++;
        return undefined;
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    release() {
      const next = waiting.shift();
      if (next) next();
      else inUse--;
    },
  };
}

/**
 * A minimal pass-through on 127.0.0.1 (prints `PORT n`): reads the client's body as text, takes a
 * slot of an n-slot FIFO semaphore ({@link fifoSlots}; 0: none), sends it with `send`, and answers
 * with a stream that pulls the upstream body through a reader and frees the slot at its end.
 */
export function servePassThrough(
  send: (text: string) => Promise<{ status: number; body: ReadableStream<Uint8Array> }>,
  slots: number,
): void {
  const { acquire, release } = fifoSlots(slots);
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(req) {
      const text = await req.text();
      await acquire();
      let up: { status: number; body: ReadableStream<Uint8Array> };
      try {
        up = await send(text);
      } catch (e) {
        release();
        throw e;
      }
      const reader = up.body.getReader();
      let held = true;
      const free = () => {
        if (held) release();
        held = false;
      };
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          const r = await reader.read();
          if (!r.done) return c.enqueue(r.value);
          free();
          c.close();
        },
        cancel(reason) {
          free();
          return reader.cancel(reason);
        },
      });
      return new Response(body, { status: up.status, headers: { "content-type": "text/event-stream" } });
    },
  });
  console.log(`PORT ${server.port}`);
}
