/**
 * `bun scripts/bench-c1-pair.ts <checkout A> <checkout B>`: the latency one client sees at one
 * connection through two gateways side by side, on 127.0.0.1 only. Each checkout's
 * `scripts/bench.ts gateway` role (key auth with a limit, request logs, metrics) is started in
 * front of one fake upstream (A's `upstream` role); then requests alternate between the gateways,
 * one at a time (A, B, B, A, …), so both see the same moments of a shared, busy machine. Prints each
 * gateway's p50, p99 and p99.9 and the median of the per-pair differences (B − A), which stays steady where
 * separate runs' p50s swing with the machine's load, and each gateway's CPU µs per request (/proc,
 * including what runs after the answer). `PAIR_N` pairs (default 15000) after a warm-up;
 * `PAIR_BODY=big` sends `bun run bench`'s ~256 KB body instead of the short one.
 *
 * @module
 */

import { envNumber } from "./bench-env.ts";
import { cpuUs, pairCheckouts, startPair, timedResponse } from "./bench-proc.ts";
import { bigBody, SHORT_BODY } from "./bench-servers.ts";

const [a, b] = pairCheckouts("bun scripts/bench-c1-pair.ts <checkout A> <checkout B>");
const N = envNumber("PAIR_N", 15000);
const body = process.env.PAIR_BODY === "big" ? bigBody() : SHORT_BODY;

const pair = await startPair(a, b);
const gateways = pair.gateways;
try {
  const one = (g: (typeof gateways)[number]) => timedResponse(g, body);
  for (const g of gateways) for (let i = 0; i < 1500; i++) await one(g);
  const lat: [number[], number[]] = [[], []];
  const cpu0 = gateways.map((g) => cpuUs(g.proc.pid));
  for (let i = 0; i < N; i++) {
    for (const j of i % 2 ? [1, 0] : [0, 1]) lat[j]!.push(await one(gateways[j]!));
  }
  const cpu = gateways.map((g, j) => (cpuUs(g.proc.pid) - cpu0[j]!) / N);
  const q = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * p)]!;
  const median = (xs: number[]) => q(xs, 0.5);
  const diff = lat[1].map((x, i) => x - lat[0][i]!);
  const line = (name: string, xs: number[], us: number) =>
    `${name}: p50 ${median(xs).toFixed(3)} ms, p99 ${q(xs, 0.99).toFixed(3)} ms, p99.9 ${q(xs, 0.999).toFixed(3)} ms, CPU ${us.toFixed(0)} µs/request`;
  console.log(line(`A ${a}`, lat[0], cpu[0]!));
  console.log(line(`B ${b}`, lat[1], cpu[1]!));
  console.log(`B − A, median of ${N} pairs: ${(median(diff) * 1000).toFixed(1)} µs`);
} finally {
  await pair.kill();
}
