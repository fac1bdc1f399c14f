/**
 * `bun scripts/bench-c64-pair.ts <checkout A> <checkout B>`: tail latency under load through two
 * gateways at the same moments, on 127.0.0.1 only. Each checkout's `scripts/bench.ts gateway` role
 * (key auth with a limit, request logs, metrics) runs in front of one fake upstream (A's); then
 * `PAIR_CONNS` (default 32) connections load each gateway at once for `PAIR_SECONDS` (default 10),
 * `PAIR_ROUNDS` times (default 3), so a busy shared machine weighs on both alike (separate
 * `bun run bench` runs swing far more than the difference being looked for). Prints, per round and
 * gateway, p50 / p99 / p99.9 / max latency and the gateway's CPU µs per request (/proc).
 * `PAIR_BODY=big` posts `bun run bench`'s ~256 KB Codex history instead of the short body
 * (`PAIR_BODY=codex`: the same with `store: false` and `stream: true`, as the Codex CLI sends it, so
 * the gateway forwards the client's own text instead of re-serialising it; `PAIR_BODY_COPIES=3`:
 * its history three times over, ~780 KB; `PAIR_BODY=stored`: the same with `store: true` and
 * `stream: false`, which the gateway changes into a text of the same length);
 * `PAIR_ANSWER=long` asks for the 1,000-event answer instead of the short one (not both at once:
 * the big body asks for the short answer). `PAIR_ACCOUNTS=200` gives both gateways 200 accounts
 * (`bun run bench`'s "200 accounts" cell) instead of one. `PAIR_KEY=1` adds a `prompt_cache_key` (one
 * key for every request, as one Codex CLI conversation sends it) to whichever body, so each request
 * goes through the sticky binding's lookup and touch. `PAIR_WARMUP_SECONDS` (default 3) loads both
 * before the first round; JavaScriptCore's JIT takes 10–20 s under this load to settle, so a
 * longer warm-up keeps round 1 from weighing the warm-up. `PAIR_SEQUENTIAL=1` loads one gateway at a
 * time (A then B, then B then A) instead of both at once, as `bun run bench`'s cells do: a change
 * that moves work between threads (Bun's `fetch` thread and the main thread) shows differently when
 * the two gateways share the two cores. The last line sums the rounds up: B − A
 * CPU µs per request for each round, and in how many B was lower.
 *
 * @module
 */

import { envNumber } from "./bench-env.ts";
import { cpuUs, pairCheckouts, startPair, timedResponse } from "./bench-proc.ts";
import { bigBody, LONG_MARKER, SHORT_BODY } from "./bench-servers.ts";

const [a, b] = pairCheckouts("bun scripts/bench-c64-pair.ts <checkout A> <checkout B>");
const CONNS = envNumber("PAIR_CONNS", 32);
const SECONDS = envNumber("PAIR_SECONDS", 10);
const ROUNDS = envNumber("PAIR_ROUNDS", 3);
const WARMUP_SECONDS = envNumber("PAIR_WARMUP_SECONDS", 3);
/** `PAIR_SEQUENTIAL=1`: load one gateway at a time instead of both at once. */
const SEQUENTIAL = process.env.PAIR_SEQUENTIAL === "1";
const big = ["big", "codex", "stored"].includes(process.env.PAIR_BODY ?? "");
if (big && process.env.PAIR_ANSWER === "long")
  throw new Error(
    "PAIR_BODY=big (or codex, stored) and PAIR_ANSWER=long cannot be combined: the big body asks for the short answer",
  );
const chosenBody =
  process.env.PAIR_BODY === "codex"
    ? codexBody(envNumber("PAIR_BODY_COPIES", 1))
    : process.env.PAIR_BODY === "stored"
      ? JSON.stringify({ ...(JSON.parse(bigBody()) as object), store: true, stream: false })
      : big
        ? bigBody()
        : process.env.PAIR_ANSWER === "long"
          ? JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: LONG_MARKER }] })
          : SHORT_BODY;
const body = process.env.PAIR_KEY === "1" ? withCacheKey(chosenBody) : chosenBody;

/** `json` with a `prompt_cache_key` (the Codex CLI's affinity key). */
function withCacheKey(json: string): string {
  return JSON.stringify({ ...(JSON.parse(json) as object), prompt_cache_key: "bench-pair-conversation" });
}

/** The big body as the Codex CLI sends it, its history `copies` times over. */
function codexBody(copies: number): string {
  const big = JSON.parse(bigBody()) as { input: unknown[] };
  return JSON.stringify({
    ...big,
    input: Array.from({ length: copies }, () => big.input).flat(),
    store: false,
    stream: true,
  });
}

const pair = await startPair(a, b, [], envNumber("PAIR_ACCOUNTS", 1));
const gateways = pair.gateways;
try {
  const one = (g: (typeof gateways)[number]) => timedResponse(g, body);
  const load = async (g: (typeof gateways)[number], ms: number) => {
    const lat: number[] = [];
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONNS }, async () => {
        while (performance.now() < end) lat.push(await one(g));
      }),
    );
    return lat;
  };
  await Promise.all(gateways.map((g) => load(g, WARMUP_SECONDS * 1000)));
  /** B − A CPU µs per request, per round. */
  const diffs: number[] = [];
  const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(1);
  for (let r = 1; r <= ROUNDS; r++) {
    const cpu0 = gateways.map((g) => cpuUs(g.proc.pid));
    const cpu1 = [0, 0];
    let lats: number[][];
    if (SEQUENTIAL) {
      // One gateway at a time (A then B, B then A in the next round): neither shares the machine
      // with the other's load, as in `bun run bench`'s interleaved cells.
      lats = [[], []];
      for (const i of r % 2 ? [0, 1] : [1, 0]) {
        const g = gateways[i]!;
        const c0 = cpuUs(g.proc.pid);
        lats[i] = await load(g, SECONDS * 1000);
        cpu1[i] = cpuUs(g.proc.pid) - c0;
      }
    } else {
      lats = await Promise.all(gateways.map((g) => load(g, SECONDS * 1000)));
      gateways.forEach((g, i) => {
        cpu1[i] = cpuUs(g.proc.pid) - cpu0[i]!;
      });
    }
    const cpus: number[] = [];
    gateways.forEach((_g, i) => {
      const xs = lats[i]!.sort((x, y) => x - y);
      const cpu = cpu1[i]! / xs.length;
      cpus.push(cpu);
      console.log(
        `round ${r} ${i ? "B" : "A"} ${i ? b : a}: ${xs.length} req, p50 ${q(xs, 0.5)} p99 ${q(xs, 0.99)} p99.9 ${q(xs, 0.999)} max ${q(xs, 1)} ms, CPU ${cpu.toFixed(0)} µs/req`,
      );
    });
    diffs.push(Math.round(cpus[1]! - cpus[0]!));
  }
  const lower = diffs.filter((d) => d < 0).length;
  console.log(
    `B − A CPU µs/req per round: ${diffs.map((d) => (d > 0 ? `+${d}` : String(d))).join(", ")}; B lower in ${lower} of ${diffs.length}`,
  );
} finally {
  await pair.kill();
}
