/**
 * `bun scripts/bench-alloc.ts <checkout> [<checkout> …]`: garbage per request of each checkout's bench
 * gateway (`scripts/bench.ts gateway`: key auth with a limit, request logs, metrics) under short-answer
 * load, 127.0.0.1 only. Each gateway runs with `BUN_JSC_logGC=1`; from that log, KB allocated per
 * request (the heap size at each collection's start minus its size after the previous one, summed per
 * VM) and collection pause per request. Allocation moves far less between runs than CPU on a shared
 * machine, so it shows an allocation cut that a CPU pair cannot resolve. `ALLOC_ROUNDS` (default 3)
 * rounds alternate the checkouts, each a fresh gateway in front of the first checkout's fake upstream:
 * 3,000 warm-up requests, then `ALLOC_REQUESTS` (default 10,000) at `ALLOC_CONNS` (default 64)
 * connections. `ALLOC_ROLE=passthrough` measures the bare pass-through instead of the gateway.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";
import {
  checkoutArgs,
  cpuUs,
  type Listening,
  requestsOver,
  spawnCheckoutRole,
  spawnListening,
  spread,
  table,
} from "./bench-proc.ts";
import { SHORT_BODY } from "./bench-servers.ts";

const roots = checkoutArgs("bun scripts/bench-alloc.ts <checkout> [<checkout> …]");
const ROUNDS = envNumber("ALLOC_ROUNDS", 3);
const REQUESTS = envNumber("ALLOC_REQUESTS", 10_000);
const CONNS = envNumber("ALLOC_CONNS", 64);
const ROLE = process.env.ALLOC_ROLE ?? "gateway";
const dir = mkdtempSync(join(tmpdir(), "codex-lb-alloc-"));

/** `n` short-answer requests over `CONNS` connections. */
const run = (g: Listening, n: number) => requestsOver(g, SHORT_BODY, n, CONNS);

/**
 * KB allocated and collection pause in ms over the part of a `BUN_JSC_logGC` log from offset `from`
 * on. A collection's lines start with `[GC<vm>: `; its start line carries `START <kind> <size>kb`,
 * its end (the same or a later line of that VM) `=> <size>kb, p=… (max …), cycle <ms>ms END`. Each
 * collection started in the part counts what was allocated since the previous one ended, that one
 * read from the whole log: a part read alone would lose its first interval (one collection's worth,
 * ~14 MB at the gateway's heap), where reading from the last collection before the part adds a
 * little of the warm-up's as it leaves out the part's last bit, which even out.
 */
function gcTotals(log: string, from: number): { kb: number; ms: number } {
  const after = new Map<string, number>();
  let kb = 0;
  let ms = 0;
  let at = 0;
  for (const line of log.split("\n")) {
    const counted = at >= from;
    at += line.length + 1;
    const vm = /^\[GC<(\w+)>: /.exec(line)?.[1];
    if (vm === undefined) continue;
    const start = /START \w+ (\d+)kb/.exec(line);
    const prev = after.get(vm);
    if (counted && start && prev !== undefined) kb += Number(start[1]) - prev;
    const end = /=> (\d+)kb, p=[\d.]+ms \(max [\d.]+\), cycle ([\d.]+)ms END/.exec(line);
    if (end) {
      after.set(vm, Number(end[1]));
      if (counted) ms += Number(end[2]);
    }
  }
  return { kb, ms };
}

const upstream = await spawnCheckoutRole(roots[0]!, ["upstream"]);
const results = roots.map(() => ({ kb: [] as number[], gcUs: [] as number[], cpuUs: [] as number[] }));
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, root] of roots.entries()) {
      const log = join(dir, `gc-${round}-${i}.log`);
      // The collector's log goes to stderr: the shell sends it to a file (`exec` keeps bun's pid).
      const g = await spawnListening(
        ["sh", "-c", `exec bun "$0"/scripts/bench.ts ${ROLE} "$1" 1 2>"$2"`, root, upstream.url, log],
        { env: { ...process.env, BUN_JSC_logGC: "1" } },
      );
      try {
        await run(g, 3000);
        const from = readFileSync(log, "utf8").length;
        const cpu0 = cpuUs(g.pid);
        await run(g, REQUESTS);
        const cpu = cpuUs(g.pid) - cpu0;
        const { kb, ms } = gcTotals(readFileSync(log, "utf8"), from);
        results[i]!.kb.push(kb / REQUESTS);
        results[i]!.gcUs.push((ms * 1000) / REQUESTS);
        results[i]!.cpuUs.push(cpu / REQUESTS);
      } finally {
        await g.kill();
      }
    }
  }
} finally {
  await upstream.kill();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${ROLE}, ${REQUESTS} short-answer requests at c${CONNS}, ${ROUNDS} rounds: median (min–max)`);
console.log(
  table([
    ["checkout", "KB allocated/req", "GC pause µs/req", "CPU µs/req"],
    ...roots.map((root, i) => [
      root,
      spread(results[i]!.kb, 1),
      spread(results[i]!.gcUs, 1),
      spread(results[i]!.cpuUs),
    ]),
  ]),
);
