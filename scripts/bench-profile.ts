/**
 * `bun scripts/bench-profile.ts`: profiles the bench gateway (`scripts/bench.ts gateway`: key auth
 * with a limit, request logs, metrics) under short-answer load at `PROFILE_CONNS` (default 64)
 * connections for `PROFILE_SECONDS` (default 8) with `bun --cpu-prof`, then prints self time by
 * JS function (native callees charged to their nearest JS caller), by file, and inclusive time of the
 * gateway's own functions. `PROFILE_OUT` (default a temp dir) keeps the .cpuprofile;
 * `PROFILE_ANSWER=long` profiles the 1,000-event answer, `PROFILE_ANSWER=real` the short answer with
 * events of a real backend's sizes, `PROFILE_BODY=big` the ~256 KB request body,
 * `PROFILE_ACCOUNTS=200` a gateway with 200 accounts instead of one.
 *
 * @module
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";
import { cpuUs, spawnListening } from "./bench-proc.ts";
import { bigBody, LONG_MARKER, REAL_MARKER } from "./bench-servers.ts";

const BENCH = join(import.meta.dir, "bench.ts");
const ROOT = join(import.meta.dir, "..");
const SECONDS = envNumber("PROFILE_SECONDS", 8);
const CONNS = envNumber("PROFILE_CONNS", 64);
const OUT = process.env.PROFILE_OUT ?? mkdtempSync(join(tmpdir(), "codex-lb-profile-"));

function spawn(args: string[], pre: string[] = []) {
  return spawnListening(["bun", ...pre, BENCH, ...args], { cwd: ROOT });
}

// `PROFILE_ANSWER=long`: the 1,000-event answer instead of the short one; `real`: real-sized events.
const ANSWER = { long: LONG_MARKER, real: REAL_MARKER }[process.env.PROFILE_ANSWER ?? ""] ?? "benchmark";
// `PROFILE_BODY=big`: `bun run bench`'s ~256 KB Codex history as the request body.
const SHORT =
  process.env.PROFILE_BODY === "big"
    ? bigBody()
    : JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: ANSWER }] });
const up = await spawn(["upstream"]);
const gw = await spawn(
  ["gateway", up.url, process.env.PROFILE_ACCOUNTS ?? "1"],
  ["--cpu-prof", `--cpu-prof-dir=${OUT}`, "--cpu-prof-interval=200"],
);
const headers = { "content-type": "application/json", authorization: `Bearer ${gw.key}` };

async function load(conns: number, seconds: number) {
  let n = 0;
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const cpu0 = cpuUs(gw.proc.pid);
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (performance.now() < until) {
        const res = await fetch(`${gw.url}/backend-api/codex/responses`, {
          method: "POST",
          headers,
          body: SHORT,
        });
        const text = await res.text();
        if (res.status !== 200 || !text.includes("response.completed")) errors++;
        n++;
      }
    }),
  );
  return { requests: n, errors, cpuUsPerRequestProfiled: Math.round((cpuUs(gw.proc.pid) - cpu0) / n) };
}

try {
  await load(8, 1);
  console.log(`c${CONNS}`, JSON.stringify(await load(CONNS, SECONDS)));
} finally {
  gw.proc.kill("SIGTERM");
  await gw.proc.exited;
  up.proc.kill("SIGTERM");
  await up.proc.exited;
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = readdirSync(OUT).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`no .cpuprofile in ${OUT}`);
const profile = JSON.parse(readFileSync(join(OUT, file), "utf8")) as { nodes: Node[]; samples: number[] };
const byId = new Map<number, Node>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const up1 = (n: Node) => (parent.has(n.id) ? byId.get(parent.get(n.id)!) : undefined);
const short = (url: string) =>
  url
    .replace(/^file:\/\//, "")
    .replace(`${ROOT}/`, "")
    .replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, "npm:$1");
const name = (n: Node) =>
  n.callFrame.url
    ? `${n.callFrame.functionName || "(anon)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
    : `${n.callFrame.functionName || "(anon)"} [native]`;
const selfFn = new Map<string, number>();
const selfFile = new Map<string, number>();
const incl = new Map<string, number>();
const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
for (const s of profile.samples) {
  const leaf = byId.get(s)!;
  let js: Node | undefined = leaf;
  while (js && !js.callFrame.url) js = up1(js);
  add(selfFn, js ? name(js) : `${name(leaf)} (no JS caller)`);
  add(selfFile, js ? short(js.callFrame.url) : "(native, no JS caller)");
  const seen = new Set<string>();
  for (let a: Node | undefined = leaf; a; a = up1(a)) {
    if (
      !/^file:\/\/.*\/(src|plugins)\//.test(a.callFrame.url) &&
      !/^\/.*\/(src|plugins)\//.test(a.callFrame.url)
    )
      continue;
    const k = name(a);
    if (!seen.has(k)) {
      seen.add(k);
      add(incl, k);
    }
  }
}
const total = profile.samples.length;
const top = (m: Map<string, number>, k: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([n, c]) => `${((100 * c) / total).toFixed(1).padStart(5)} %  ${n}`)
    .join("\n");
console.log(`\n${total} samples, ${join(OUT, file)}\n\nSelf time by JS function (native callees included):`);
console.log(top(selfFn, 25));
console.log("\nBy file:");
console.log(top(selfFile, 20));
console.log("\nInclusive, the gateway's own functions:");
console.log(top(incl, 40));
