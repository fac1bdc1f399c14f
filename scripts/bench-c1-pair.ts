/**
 * `bun scripts/bench-c1-pair.ts <checkout A> <checkout B>`: the latency one client sees at one
 * connection through two gateways side by side, on 127.0.0.1 only. Each checkout's
 * `scripts/bench.ts gateway` role (key auth with a limit, request logs, metrics) is started in
 * front of one fake upstream (A's `upstream` role); then requests alternate between the gateways,
 * one at a time (A, B, B, A, …), so both see the same moments of a shared, busy machine. Prints each
 * gateway's p50 and the median of the per-pair differences (B − A), which stays steady where
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
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const diff = lat[1].map((x, i) => x - lat[0][i]!);
  console.log(`A ${a}: p50 ${median(lat[0]).toFixed(3)} ms, CPU ${cpu[0]!.toFixed(0)} µs/request`);
  console.log(`B ${b}: p50 ${median(lat[1]).toFixed(3)} ms, CPU ${cpu[1]!.toFixed(0)} µs/request`);
  console.log(`B − A, median of ${N} pairs: ${(median(diff) * 1000).toFixed(1)} µs`);
} finally {
  await pair.kill();
}
