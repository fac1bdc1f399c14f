/**
 * `bun scripts/bench-jit.ts [<checkout>]`: what JavaScriptCore's JIT does in the bench gateway
 * (`scripts/bench.ts gateway`: key auth with a limit, request logs, metrics; this checkout by default)
 * under `JIT_CONNS` (default 64) connections of short answers (`JIT_ANSWER=long`: the 1,000-event
 * answer), 127.0.0.1 only, over `JIT_PHASES` seconds (default `5,5,10,20,20,20,20`: warm-up, then
 * steady load). The gateway runs with JSC's own reports (`BUN_JSC_reportCompileTimes`,
 * `BUN_JSC_printEachOSRExit`, `BUN_JSC_logGC`; `JIT_REASONS=1` adds `BUN_JSC_dumpDFGDisassembly`,
 * the only report that says why optimised code was thrown away, at the price of much slower
 * compiles). Its stderr goes to a file (`JIT_LOG`, default a temp file, kept).
 *
 * Per phase: requests, CPU µs per request of the process and of its JIT worker threads (from
 * /proc/PID/task; a worker that ends within a phase loses its last CPU, so that figure is a floor),
 * compiles per tier and their time, full collections, OSR exits and (with `JIT_REASONS`) thrown-away
 * code by reason. After the phases: the functions optimised again at a tier they already reached,
 * after the first 10 s, and the OSR exit sites after those 10 s. Functions are named as JSC names them, `name#hash` (the hash is of the
 * function's source; `BUN_JSC_dumpSourceAtDFGTime=1` prints the source with it).
 *
 * @module
 */
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { envNumber } from "./bench-env.ts";
import { cpuUs, type Listening, processGroup, statTimes } from "./bench-proc.ts";
import { LONG_MARKER, SHORT_BODY } from "./bench-servers.ts";

const root = resolve(process.argv[2] ?? join(import.meta.dir, ".."));
const CONNS = envNumber("JIT_CONNS", 64);
const WARM_UP_S = 10;
const PHASES = (process.env.JIT_PHASES ?? "5,5,10,20,20,20,20").split(",").map(Number);
if (PHASES.some((s) => !Number.isFinite(s) || s <= 0)) {
  console.error(
    `JIT_PHASES: expected seconds separated by commas, got ${JSON.stringify(process.env.JIT_PHASES)}`,
  );
  process.exit(2);
}
const LOG = process.env.JIT_LOG ?? join(mkdtempSync(join(tmpdir(), "codex-lb-jit-")), "gateway.stderr");
const body =
  process.env.JIT_ANSWER === "long"
    ? JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: LONG_MARKER }] })
    : SHORT_BODY;
const jsc: Record<string, string> = {
  BUN_JSC_reportCompileTimes: "1",
  BUN_JSC_printEachOSRExit: "1",
  BUN_JSC_logGC: "1",
  ...(process.env.JIT_REASONS === "1" ? { BUN_JSC_dumpDFGDisassembly: "1" } : {}),
};

/** CPU µs so far of each thread of `pid`, by thread id, with the thread's name. */
function threads(pid: number): Map<string, { name: string; us: number }> {
  const out = new Map<string, { name: string; us: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // ended since the listing
    }
    const { name, userUs, sysUs } = statTimes(stat);
    out.set(tid, { name, us: userUs + sysUs });
  }
  return out;
}

/** CPU µs the JIT worker threads used between two {@link threads} readings. */
function jitUs(before: ReturnType<typeof threads>, after: ReturnType<typeof threads>): number {
  let us = 0;
  for (const [tid, t] of after) if (t.name.startsWith("JITWorker")) us += t.us - (before.get(tid)?.us ?? 0);
  return us;
}

/** What the gateway's stderr says in one phase. */
interface Events {
  /** `name#hash`, tier (Baseline, DFG, FTL, FTLForOSREntry), compile ms. */
  compiles: { fn: string; tier: string; ms: number }[];
  /** `name#hash tier bc#n ExitKind`. */
  exits: string[];
  /** `reason`, `name#hash tier`. */
  jettisons: { reason: string; fn: string }[];
  fullGcs: number;
}

/** The report lines {@link parse} reads, each with what it keeps of a match. */
const reports: [RegExp, (m: RegExpExecArray, ev: Events) => void][] = [
  [
    /^Optimized (.+?):\[.*\] using (\w+) with \w+ into \d+ bytes in ([\d.]+) ms/,
    (m, ev) => ev.compiles.push({ fn: m[1]!, tier: m[2]!, ms: Number(m[3]) }),
  ],
  [
    /^Speculation failure in (.+?):\[[^\]]*?, (DFG|FTL)\w*, .*?@ exit #\d+ \((bc#\d+), (\w+)\)/,
    (m, ev) => ev.exits.push(`${m[1]} ${m[2]} ${m[3]} ${m[4]}`),
  ],
  [
    /^Jettisoning (.+?):\[[^,]*, (\w+?)(?:Function|Module|Program|Eval)\w*,.* due to (\w+)/,
    (m, ev) => ev.jettisons.push({ reason: m[3]!, fn: `${m[1]} ${m[2]}` }),
  ],
  [/START \w+ \d+kb => FullCollection/, (_, ev) => ev.fullGcs++],
];

function parse(text: string): Events {
  const ev: Events = { compiles: [], exits: [], jettisons: [], fullGcs: 0 };
  for (const line of text.split("\n"))
    for (const [re, keep] of reports) {
      const m = re.exec(line);
      if (m) {
        keep(m, ev);
        break;
      }
    }
  return ev;
}

/** The log's bytes from `offset` on, as text, and the new end offset. */
function readFrom(path: string, offset: number): [string, number] {
  const fd = openSync(path, "r");
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(1 << 20);
      const n = readSync(fd, buf, 0, buf.length, offset);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      offset += n;
    }
    return [Buffer.concat(chunks).toString("utf8"), offset];
  } finally {
    closeSync(fd);
  }
}

async function load(g: Listening, seconds: number): Promise<number> {
  let n = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (performance.now() < until) {
        const res = await fetch(`${g.url}/backend-api/codex/responses`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${g.key}` },
          body,
        });
        const text = await res.text();
        if (res.status !== 200 || !text.includes("response.completed"))
          throw new Error(`status ${res.status}`);
        n++;
      }
    }),
  );
  return n;
}

const count = <T>(xs: T[]) => {
  const m = new Map<T, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]);
};

const procs = processGroup();
try {
  const up = await procs.start(["bun", `${root}/scripts/bench.ts`, "upstream"]);
  // JSC writes its reports to stderr: the shell sends it to the log (`exec` keeps bun's pid).
  const gw = await procs.start(
    ["sh", "-c", `exec bun "$0"/scripts/bench.ts gateway "$1" 1 2>"$2"`, root, up.url, LOG],
    jsc,
  );
  console.log(
    `gateway of ${root}, ${CONNS} connections, ${process.env.JIT_ANSWER === "long" ? "1,000-event" : "short"} answers; JSC log ${LOG}`,
  );
  let at = 0;
  let offset = 0;
  const phases: { phase: string; ev: Events; late: boolean }[] = [];
  for (const seconds of PHASES) {
    const t0 = threads(gw.pid);
    const cpu0 = cpuUs(gw.pid);
    const n = await load(gw, seconds);
    const cpu = cpuUs(gw.pid) - cpu0;
    const jit = jitUs(t0, threads(gw.pid));
    let text: string;
    [text, offset] = readFrom(LOG, offset);
    const ev = parse(text);
    const phase = `${at}-${at + seconds}s`;
    const tiers = count(ev.compiles.map((c) => c.tier))
      .map(([t, k]) => `${t} ${k}`)
      .join(", ");
    const ms = ev.compiles.reduce((s, c) => s + c.ms, 0);
    const jettisons = count(ev.jettisons.map((j) => j.reason))
      .map(([r, k]) => `${r} ${k}`)
      .join(", ");
    console.log(
      `${phase.padEnd(9)} ${n} req, CPU ${(cpu / n).toFixed(0)} µs/req, JIT threads ≥ ${(jit / n).toFixed(1)} µs/req; ` +
        `compiles ${tiers || "none"} (${ms.toFixed(0)} ms); full GCs ${ev.fullGcs}; OSR exits ${ev.exits.length}` +
        (jettisons ? `; thrown away: ${jettisons}` : ""),
    );
    phases.push({ phase, ev, late: at >= WARM_UP_S });
    at += seconds;
  }
  // Optimised again: a DFG or FTL compile after warm-up of a function already compiled at that tier.
  const seen = new Set<string>();
  const again = new Map<string, string[]>();
  for (const { phase, ev, late } of phases)
    for (const c of ev.compiles) {
      const tier = `${c.fn} ${c.tier}`;
      if (c.tier !== "Baseline" && late && seen.has(tier))
        again.set(c.fn, [...(again.get(c.fn) ?? []), `${c.tier} ${phase} ${c.ms.toFixed(1)} ms`]);
      seen.add(tier);
    }
  console.log(`\noptimised again at the same tier after ${WARM_UP_S} s (${again.size} functions):`);
  for (const [fn, cs] of [...again].sort((a, b) => b[1].length - a[1].length).slice(0, 40))
    console.log(`  ${fn}: ${cs.join(", ")}`);
  const later = phases.filter((p) => p.late);
  console.log(`\nOSR exit sites after ${WARM_UP_S} s:`);
  for (const [site, k] of count(later.flatMap((l) => l.ev.exits)).slice(0, 25))
    console.log(`  ${String(k).padStart(5)} ${site}`);
  const thrown = later
    .flatMap((l) => l.ev.jettisons)
    .filter((j) => j.reason !== "JettisonDueToOldAge" || !/LLInt|Baseline/.test(j.fn));
  if (thrown.length > 0) {
    console.log(`\noptimised code thrown away after ${WARM_UP_S} s (old LLInt/Baseline code left out):`);
    for (const [what, k] of count(thrown.map((j) => `${j.reason} ${j.fn}`)).slice(0, 40))
      console.log(`  ${k} ${what}`);
  }
} finally {
  await procs.stop();
}
