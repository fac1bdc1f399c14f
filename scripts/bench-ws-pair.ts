/**
 * `bun scripts/bench-ws-pair.ts <checkout A> <checkout B>`: CPU per Responses WebSocket turn of two
 * gateways at the same moments, on 127.0.0.1 only. Each checkout's `scripts/bench.ts gateway` role
 * (key auth with a limit, request logs, metrics) runs in front of one fake upstream (A's, which
 * answers each `response.create` with the 36-event short answer as frames, upstream WebSocket
 * too); `WS_SOCKETS` (default 64) sockets each send turn after turn for `WS_SECONDS` (default 2) to
 * one gateway, then to the other, `WS_ROUNDS` times (default 6, the order alternating). Prints each
 * gateway's CPU µs per turn (/proc) per round and the median of the per-round differences B − A.
 * `WS_PROFILE=<dir>` runs gateway B under `bun --cpu-prof` into that directory.
 *
 * @module
 */
import { resolve } from "node:path";
import { cpuUs, type Listening, spawnListening } from "./bench-proc.ts";

const [a, b] = process.argv.slice(2).map((p) => resolve(p));
if (!a || !b) {
  console.error("usage: bun scripts/bench-ws-pair.ts <checkout A> <checkout B>");
  process.exit(2);
}
const SOCKETS = Number(process.env.WS_SOCKETS ?? 64);
const SECONDS = Number(process.env.WS_SECONDS ?? 2);
const ROUNDS = Number(process.env.WS_ROUNDS ?? 6);
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
      const next = () => {
        if (performance.now() >= until) ws.close();
        else ws.send(turn);
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
      ws.onclose = () => done();
    });
  const cpu0 = cpuUs(g.pid);
  await Promise.all(Array.from({ length: sockets }, one));
  return { us: (cpuUs(g.pid) - cpu0) / Math.max(1, turns), errors };
}

const upstream = await spawnListening(["bun", `${a}/scripts/bench.ts`, "upstream"]);
const gateways = [
  await spawnListening(["bun", `${a}/scripts/bench.ts`, "gateway", upstream.url, "1"]),
  await spawnListening(["bun", ...profile, `${b}/scripts/bench.ts`, "gateway", upstream.url, "1"]),
];
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
} finally {
  for (const g of gateways) await g.kill();
  await upstream.kill();
}
