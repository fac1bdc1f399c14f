/**
 * `bun scripts/bench-big-streams.ts`: memory of concurrent slow streams whose requests carry a long
 * Codex history (~261 KB, the bench's "261 KB body"), as the Codex CLI sends them. Runs the
 * bench's fake upstream and gateway (`scripts/bench.ts upstream|gateway`, 127.0.0.1 only), opens
 * `BENCH_STREAMS` (default 300) slow streams of `BENCH_SLOW_SECONDS` (default 10) one-second events,
 * and prints the gateway's RSS while they all run (`mid`, 7 s in) and its peak (VmHWM). What an
 * open stream keeps of its request shows in `mid` (the gateway runs a full GC every second for
 * this; `BENCH_GC=0`: not); `peak` also has the garbage of parsing them all at once.
 *
 * @module
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";
import { spawnListening, statusMb } from "./bench-proc.ts";
import { SLOW_MARKER } from "./bench-servers.ts";

// `BENCH_TREE=/path/to/checkout`: the gateway of another checkout (A/B).
const BENCH = `${process.env.BENCH_TREE ?? `${import.meta.dir}/..`}/scripts/bench.ts`;
const N = envNumber("BENCH_STREAMS", 300);
const env = {
  ...process.env,
  BENCH_SLOW_SECONDS: process.env.BENCH_SLOW_SECONDS ?? "10",
  BUN_CONFIG_MAX_HTTP_REQUESTS: String(N + 256),
  BENCH_MAX_STREAMS: String(N + 10),
};

// The gateway collects its garbage every second (a full GC), so `mid` is what open streams keep
// alive, not what the collector has not got to yet (`BENCH_GC=0`: as it comes).
const GC = process.env.BENCH_GC !== "0";
const gcEverySecond = join(mkdtempSync(join(tmpdir(), "codex-lb-gc-")), "gc.ts");
writeFileSync(gcEverySecond, "setInterval(() => Bun.gc(true), 1000).unref();\n");

function spawn(args: string[], preload: string[] = []) {
  return spawnListening(["bun", ...preload, BENCH, ...args], { env });
}

const mb = (pid: number, field: string) => Math.round(statusMb(pid, field));

// `BENCH_BODY=codex`: the body as the Codex CLI sends it (`store: false`, `stream: true`), which
// the gateway forwards as the client's own text; by default the gateway re-serialises it.
// `BENCH_TURNS` (default 128): turns of 2,000 characters in the history (128: ~261 KB).
const TURNS = envNumber("BENCH_TURNS", 128);
const codex = process.env.BENCH_BODY === "codex" ? { store: false, stream: true } : {};
const body = JSON.stringify({
  model: "gpt-5.2",
  ...codex,
  instructions: "You are a coding agent.",
  input: Array.from({ length: TURNS }, (_, i) => ({
    type: "message",
    role: i % 2 ? "assistant" : "user",
    content: [
      {
        type: i % 2 ? "output_text" : "input_text",
        text: `turn ${i} ${"x".repeat(2000)}${i === TURNS - 1 ? ` ${SLOW_MARKER}` : ""}`,
      },
    ],
  })),
});
const up = await spawn(["upstream"]);
const gw = await spawn(["gateway", up.url, "1"], GC ? ["--preload", gcEverySecond] : []);
await Bun.sleep(200);
const idle = mb(gw.proc.pid, "VmRSS");
let ok = 0;
let errors = 0;
const one = async () => {
  try {
    const res = await fetch(`${gw.url}/backend-api/codex/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${gw.key}` },
      body,
    });
    if ((await res.text()).includes("response.completed")) ok++;
    else errors++;
  } catch {
    errors++;
  }
};
const all: Promise<void>[] = [];
// `BENCH_SPREAD_SECONDS`: the streams open one by one over that many seconds, as traffic comes,
// instead of in one burst (50 every 25 ms); `mid` is then taken `BENCH_MID_SECONDS` (default 7) after the last.
const spread = envNumber("BENCH_SPREAD_SECONDS", 0);
for (let i = 0; i < N; i++) {
  all.push(one());
  if (spread > 0) await Bun.sleep((spread * 1000) / N);
  else if (i % 50 === 49) await Bun.sleep(25);
}
await Bun.sleep(envNumber("BENCH_MID_SECONDS", 7) * 1000);
const mid = mb(gw.proc.pid, "VmRSS");
await Promise.all(all);
const peak = mb(gw.proc.pid, "VmHWM");
console.log(
  JSON.stringify({
    streams: N,
    bodyKB: Math.round(body.length / 1024),
    body: process.env.BENCH_BODY ?? "changed",
    ok,
    errors,
    idleMB: idle,
    midMB: mid,
    peakMB: peak,
  }),
);
gw.proc.kill();
up.proc.kill();
