/**
 * `bun scripts/bench-ws-pair.ts <checkout A> <checkout B>`: CPU per Responses WebSocket turn of two
 * gateways, on 127.0.0.1 only. Each checkout's `scripts/bench.ts gateway` role (key auth with a
 * limit, request logs, metrics) runs in front of one fake upstream (A's, which answers each
 * `response.create` with the 36-event short answer as frames, upstream WebSocket too);
 * `WS_SOCKETS` (default 64) sockets each send turn after turn for `WS_SECONDS` (default 2) to one
 * gateway, then to the other, `WS_ROUNDS` times (default 6). The gateways are loaded one after the
 * other, not at the same moments: the order alternates each round (A B, B A, …) so neither always
 * runs on the warmer or quieter stretch of a shared machine. Prints each gateway's CPU µs per turn
 * (/proc) per round and the median of the per-round differences B − A. The CPU of a round counts
 * its `WS_SOCKETS` upgrades (handshake, auth) too, spread over its turns: compare runs with the
 * same `WS_SOCKETS` and `WS_SECONDS`. A turn with no terminal event within `WS_TURN_TIMEOUT`
 * seconds (default 30) counts as an error and closes its socket. `WS_PROFILE=<dir>` runs gateway B
 * under `bun --cpu-prof` into that directory.
 *
 * @module
 */

import { envNumber } from "./bench-env.ts";
import { cpuUs, type Listening, pairCheckouts, startPair } from "./bench-proc.ts";

const [a, b] = pairCheckouts("bun scripts/bench-ws-pair.ts <checkout A> <checkout B>");
const SOCKETS = envNumber("WS_SOCKETS", 64);
const SECONDS = envNumber("WS_SECONDS", 2);
const ROUNDS = envNumber("WS_ROUNDS", 6);
const TURN_TIMEOUT_MS = envNumber("WS_TURN_TIMEOUT", 30) * 1000;
const profile = process.env.WS_PROFILE
  ? ["--cpu-prof", `--cpu-prof-dir=${process.env.WS_PROFILE}`, "--cpu-prof-interval=200"]
  : [];
const turn = JSON.stringify({
  type: "response.create",
  model: "gpt-5.2",
  input: [{ role: "user", content: "benchmark" }],
});

/** `sockets` sockets, each sending turn after turn for `seconds` (a turn ends at its terminal event). */
async function load(g: Listening, sockets: number, seconds: number) {
  let turns = 0;
  let errors = 0;
  const one = () =>
    new Promise<void>((done) => {
      const ws = new WebSocket(`${g.url.replace(/^http/, "ws")}/backend-api/codex/responses`, {
        headers: { authorization: `Bearer ${g.key}` },
      } as unknown as string[]);
      const until = performance.now() + seconds * 1000;
      // A hung turn (no terminal event in time) is an error and ends this socket's part of the round.
      let hung: ReturnType<typeof setTimeout> | undefined;
      const next = () => {
        clearTimeout(hung);
        if (performance.now() >= until) ws.close();
        else {
          ws.send(turn);
          hung = setTimeout(() => {
            errors++;
            ws.close();
            done();
          }, TURN_TIMEOUT_MS);
        }
      };
      ws.onopen = next;
      ws.onmessage = (e) => {
        const text = String(e.data);
        if (text.startsWith('{"type":"response.completed"')) {
          turns++;
          next();
        } else if (text.startsWith('{"type":"error"') || text.startsWith('{"type":"response.failed"')) {
          errors++;
          next();
        }
      };
      ws.onerror = () => {
        errors++;
      };
      ws.onclose = () => {
        clearTimeout(hung);
        done();
      };
    });
  const cpu0 = cpuUs(g.pid);
  await Promise.all(Array.from({ length: sockets }, one));
  return { us: (cpuUs(g.pid) - cpu0) / Math.max(1, turns), errors };
}

// Started inside startPair's own cleanup: a failed start of B stops the upstream and A.
const pair = await startPair(a, b, profile);
const gateways = pair.gateways;
try {
  for (const g of gateways) await load(g, 8, 1);
  const rows: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of r % 2 ? [1, 0] : [0, 1]) {
      const x = await load(gateways[i]!, SOCKETS, SECONDS);
      if (x.errors > 0) console.log(`round ${r + 1}: ${x.errors} errors on ${i ? "B" : "A"}`);
      rows[i]!.push(x.us);
    }
  }
  const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
  const show = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" ");
  console.log(`A ${a}: median ${median(rows[0]!).toFixed(0)} µs/turn  rounds: ${show(rows[0]!)}`);
  console.log(`B ${b}: median ${median(rows[1]!).toFixed(0)} µs/turn  rounds: ${show(rows[1]!)}`);
  const diff = rows[1]!.map((x, i) => x - rows[0]![i]!);
  console.log(`B − A per round: median ${median(diff).toFixed(0)} µs  rounds: ${show(diff)}`);
  console.log(`(CPU per turn includes each round's ${SOCKETS} WebSocket upgrades)`);
} finally {
  await pair.kill();
}
