/**
 * `bun scripts/bench-cap.ts`: what the per-account stream cap (`CODEX_LB_ACCOUNT_MAX_STREAMS`, default
 * 8) does to CPU per request and req/s, on 127.0.0.1 only. `bun run bench` runs its gateway with one
 * account and the default cap, so at 64 connections 56 requests wait for a lease.
 *
 * Three pairs, each pair's two processes loaded at the same moments (a busy shared machine weighs on
 * both alike; one at a time, req/s alone swings more than the difference), all in front of one fake
 * upstream, for `CAP_ROUNDS` (default 6) rounds of `CAP_SECONDS` (default 6) after `CAP_WARM` (default
 * 15) s of warm-up each (JIT warm-up costs ~140 µs/req for 5 s). N is `CAP_SLOTS` (default 8).
 * - The pass-through, its answer piped through a reader that sees the end, against the same with an
 *   N-slot FIFO semaphore held from before its `fetch` until the answer has ended (a lease's span):
 *   what running only N upstream requests at a time costs a bare proxy.
 * - The bench gateway with cap N against cap 1000 (`BENCH_MAX_STREAMS`), both at 64 connections.
 * - Two gateways with cap N, at 64 connections (56 wait) and at N (nobody waits, still N upstream
 *   requests at a time): what the waiting itself costs.
 * Per process, median (min–max) of: CPU µs/req of the process, of its main thread and of Bun's HTTP
 * client thread (/proc/PID/task), how often per request that thread went to sleep (voluntary context
 * switches), req/s; per pair, the second minus the first, per round.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { envNumber } from "./bench-env.ts";
import {
  type Listening,
  load,
  processGroup,
  servePassThrough,
  spread,
  statTimes,
  table,
} from "./bench-proc.ts";
import { SHORT_BODY } from "./bench-servers.ts";

/** Role `slots <upstream> <n>`: the pass-through with an n-slot semaphore (0: no limit, same piping). */
async function serveSlotted(upstream: string, slots: number): Promise<void> {
  servePassThrough(async (text) => {
    const res = await fetch(`${upstream}/backend-api/codex/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: text,
    });
    return { status: res.status, body: res.body! };
  }, slots);
}

interface ThreadTimes {
  /** CPU µs of the main thread and of Bun's HTTP client thread. */
  main: number;
  http: number;
  /** Voluntary context switches of the HTTP client thread. */
  httpSleeps: number;
}

/** Per-thread CPU and sleeps of a process, from /proc/PID/task. */
function threadTimes(pid: number): ThreadTimes {
  const out: ThreadTimes = { main: 0, http: 0, httpSleeps: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    let status: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    } catch {
      continue; // the thread ended meanwhile
    }
    const { name: comm, userUs, sysUs } = statTimes(stat);
    const us = userUs + sysUs;
    if (tid === String(pid)) out.main += us;
    else if (comm === "HTTP Client") {
      out.http += us;
      out.httpSleeps += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const N = envNumber("CAP_SLOTS", 8);
  const ROUNDS = envNumber("CAP_ROUNDS", 6);
  const SECONDS = envNumber("CAP_SECONDS", 6);
  const WARM = envNumber("CAP_WARM", 15);
  const bench = `${import.meta.dir}/bench.ts`;
  const procs = processGroup();
  const start = procs.start;
  try {
    const upstream = await start(["bun", bench, "upstream"]);
    const gateway = (cap: number) =>
      start(["bun", bench, "gateway", upstream.url, "1"], { BENCH_MAX_STREAMS: String(cap) });
    const slotted = (slots: number) => start(["bun", import.meta.path, "slots", upstream.url, String(slots)]);
    type Row = { name: string; proc: Listening; conns: number };
    const capped = await gateway(N);
    const pairs: [Row, Row][] = [
      [
        { name: "pass-through", proc: await slotted(0), conns: 64 },
        { name: `pass-through, ${N} slots`, proc: await slotted(N), conns: 64 },
      ],
      [
        { name: "gateway cap 1000", proc: await gateway(1000), conns: 64 },
        { name: `gateway cap ${N}`, proc: capped, conns: 64 },
      ],
      [
        { name: `gateway cap ${N} at c${N}`, proc: await gateway(N), conns: N },
        { name: `gateway cap ${N}`, proc: capped, conns: 64 },
      ],
    ];
    const cell = async (r: Row, seconds: number) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (r.proc.key) headers.authorization = `Bearer ${r.proc.key}`;
      const url = `${r.proc.url}/backend-api/codex/responses`;
      const t0 = threadTimes(r.proc.pid);
      const c = await load(url, headers, SHORT_BODY, r.conns, seconds, {
        proxy: r.proc.pid,
        upstream: upstream.pid,
      });
      const t1 = threadTimes(r.proc.pid);
      if (c.errors > 0) throw new Error(`${r.name}: ${c.errors} errors`);
      return {
        cpu: c.proxyUs!,
        main: (t1.main - t0.main) / c.n,
        http: (t1.http - t0.http) / c.n,
        sleeps: (t1.httpSleeps - t0.httpSleeps) / c.n,
        rps: c.rps,
      };
    };
    type Cell = Awaited<ReturnType<typeof cell>>;
    for (const pair of pairs) await Promise.all(pair.map((r) => cell(r, WARM)));
    const results = pairs.map(() => [[], []] as [Cell[], Cell[]]);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < pairs.length; k++) {
        const i = (k + round) % pairs.length;
        const cells = await Promise.all(pairs[i]!.map((r) => cell(r, SECONDS)));
        results[i]![0].push(cells[0]!);
        results[i]![1].push(cells[1]!);
      }
    }
    const of = (cs: Cell[], k: keyof Cell) => cs.map((c) => c[k]);
    console.log(
      `Short answer, ${ROUNDS} rounds × ${SECONDS} s, the two processes of a pair loaded at once: median (min–max)`,
    );
    console.log(
      table([
        [
          "process",
          "conns",
          "CPU µs/req",
          "main thread",
          "HTTP client thread",
          "HTTP thread sleeps/req",
          "req/s",
        ],
        ...pairs.flatMap((pair, i) =>
          pair.map((r, j) => {
            const cs = results[i]![j]!;
            return [
              r.name,
              String(r.conns),
              spread(of(cs, "cpu")),
              spread(of(cs, "main")),
              spread(of(cs, "http")),
              spread(of(cs, "sleeps"), 2),
              spread(of(cs, "rps")),
            ];
          }),
        ),
      ]),
    );
    for (const [i, [a, b]] of pairs.entries()) {
      const d = results[i]![1].map((c, r) => c.cpu - results[i]![0][r]!.cpu);
      console.log(
        `${b.name} minus ${a.name}, CPU µs/req per round: ${d.map((x) => x.toFixed(0)).join(", ")} (higher in ${d.filter((x) => x > 0).length} of ${d.length})`,
      );
    }
  } finally {
    await procs.stop();
  }
}

if (process.argv[2] === "slots") await serveSlotted(process.argv[3]!, Number(process.argv[4]));
else await main();
