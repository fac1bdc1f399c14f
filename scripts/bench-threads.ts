/**
 * `bun scripts/bench-threads.ts`: where a proxied request's CPU goes, by thread and by user or
 * kernel time. Starts `bun run bench`'s fake upstream, its bare pass-through and its gateway (key
 * auth with a limit, request logs, metrics; 127.0.0.1 only), loads each with the short answer at
 * `THREADS_CONNS` (default 64) connections for `THREADS_SECONDS` (default 6) twice (the first round
 * still has the JIT compiling), and prints, per request, each process's user and system CPU and
 * that of each of its threads above 0.5 µs (from `/proc/PID/task/TID/stat`): the main thread, Bun's
 * "HTTP Client" thread (`fetch`), the JIT workers, the collector's helpers, the checkpoint worker.
 *
 * Session 18, 2-core box, c64: the pass-through's main thread 13 µs user and 9 system, its HTTP
 * client thread 3 and 11; the gateway's main thread 135 user and 31 system, the collector's
 * helpers 9: what the gateway adds is user time on its main thread.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";
import { load, spawnListening, statTimes } from "./bench-proc.ts";
import { SHORT_BODY } from "./bench-servers.ts";

const BENCH = join(import.meta.dir, "bench.ts");
const CONNS = envNumber("THREADS_CONNS", 64);
const SECONDS = envNumber("THREADS_SECONDS", 6);
/** User and system µs of each thread of `pid`, by "name:tid". */
function threads(pid: number): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = statTimes(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
      out.set(`${t.name}:${tid}`, [t.userUs, t.sysUs]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function delta(before: Map<string, [number, number]>, after: Map<string, [number, number]>, n: number) {
  const rows: { name: string; user: number; sys: number }[] = [];
  for (const [name, [u, s]] of after) {
    const [u0, s0] = before.get(name) ?? [0, 0];
    rows.push({ name, user: (u - u0) / n, sys: (s - s0) / n });
  }
  return rows;
}

const up = await spawnListening(["bun", BENCH, "upstream"]);
const pass = await spawnListening(["bun", BENCH, "passthrough", up.url]);
const gw = await spawnListening(["bun", BENCH, "gateway", up.url, "1"]);
try {
  const targets: { name: string; proc: typeof gw; url: string; headers: Record<string, string> }[] = [
    {
      name: "pass-through",
      proc: pass,
      url: `${pass.url}/`,
      headers: { "content-type": "application/json" },
    },
    {
      name: "codex-lb",
      proc: gw,
      url: `${gw.url}/backend-api/codex/responses`,
      headers: { "content-type": "application/json", authorization: `Bearer ${gw.key}` },
    },
  ];
  for (const t of targets) {
    const pids = { proxy: t.proc.pid, upstream: up.pid };
    await load(t.url, t.headers, SHORT_BODY, 8, 1, pids);
    for (let round = 1; round <= 2; round++) {
      const before = threads(t.proc.pid);
      const upBefore = threads(up.pid);
      const cell = await load(t.url, t.headers, SHORT_BODY, CONNS, SECONDS, pids);
      const rows = delta(before, threads(t.proc.pid), cell.n);
      const upRows = delta(upBefore, threads(up.pid), cell.n);
      const sum = (xs: typeof rows, k: "user" | "sys") => xs.reduce((a, r) => a + r[k], 0).toFixed(1);
      console.log(
        `${t.name} c${CONNS} round ${round}: ${cell.n} requests, ${cell.rps.toFixed(0)} req/s; ` +
          `µs per request: user ${sum(rows, "user")}, system ${sum(rows, "sys")} ` +
          `(upstream: user ${sum(upRows, "user")}, system ${sum(upRows, "sys")})`,
      );
      for (const r of rows)
        if (r.user + r.sys > 0.5)
          console.log(`  ${r.name.padEnd(24)} user ${r.user.toFixed(1)}  system ${r.sys.toFixed(1)}`);
    }
  }
} finally {
  for (const p of [up, pass, gw]) await p.kill();
}
