/**
 * `bun scripts/bench-stream-pair.ts <checkout A> <checkout B>`: the answer-stream path alone (the
 * `gateway` proxy of each checkout's `scripts/bench-stream-body.ts`: the attempt's first-event
 * check, `ProxyStream` with the Codex shaper, `toReadableStream`; no auth, store or logs) of two
 * checkouts, loaded at the same moments in front of one fake upstream, on 127.0.0.1 only. Less of
 * each request's CPU is the rest of the gateway, so a change to the stream path shows through the
 * noise of a shared machine better than in `bench-c64-pair.ts`. `PAIR_ANSWER` (default
 * `bench-long-stream`, the 1,000-event answer; `benchmark`: the short one), `STREAM_SHAPER=responses`
 * (the `/v1/responses` stream shaper instead of the Codex one; `collector`: the answer assembled as
 * one JSON object, as `/v1/responses` without `stream`; `chat`: the streamed Chat Completions
 * shaper), `PAIR_ANSWER=bench-reasoning-stream` (a reasoning model's 1,000-event answer), `PAIR_CONNS` (default 8),
 * `PAIR_SECONDS` (3), `PAIR_ROUNDS` (12). Prints each round's CPU µs per request (/proc) of both,
 * and in how many rounds B was lower.
 *
 * @module
 */
import { envNumber } from "./bench-env.ts";
import { cpuUs, pairCheckouts, spawnListening } from "./bench-proc.ts";

const [a, b] = pairCheckouts("bun scripts/bench-stream-pair.ts <checkout A> <checkout B>");
const CONNS = envNumber("PAIR_CONNS", 8);
const SECONDS = envNumber("PAIR_SECONDS", 3);
const ROUNDS = envNumber("PAIR_ROUNDS", 12);
const body = JSON.stringify({
  model: "gpt-5.2",
  input: [{ role: "user", content: process.env.PAIR_ANSWER ?? "bench-long-stream" }],
});

const upstream = await spawnListening(["bun", `${a}/scripts/bench.ts`, "upstream"]);
const proxies = [
  await spawnListening(["bun", `${a}/scripts/bench-stream-body.ts`, "proxy", upstream.url, "gateway"]),
  await spawnListening(["bun", `${b}/scripts/bench-stream-body.ts`, "proxy", upstream.url, "gateway"]),
];
try {
  /** Requests answered by `p` over `ms` at {@link CONNS} connections. */
  const load = async (p: (typeof proxies)[number], ms: number) => {
    let n = 0;
    const until = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONNS }, async () => {
        while (performance.now() < until) {
          const res = await fetch(`${p.url}/`, { method: "POST", body });
          const text = await res.text();
          // A stream ends with its terminal event (a Chat stream with `[DONE]`); an assembled answer
          // is the completed Response.
          if (
            !text.includes("response.completed") &&
            !text.includes('"status":"completed"') &&
            !text.includes("data: [DONE]")
          )
            throw new Error(`${p.url}: bad answer`);
          n++;
        }
      }),
    );
    return n;
  };
  await Promise.all(proxies.map((p) => load(p, 3000)));
  let lower = 0;
  for (let r = 1; r <= ROUNDS; r++) {
    const cpu0 = proxies.map((p) => cpuUs(p.pid));
    const done = await Promise.all(proxies.map((p) => load(p, SECONDS * 1000)));
    const us = proxies.map((p, i) => Math.round((cpuUs(p.pid) - cpu0[i]!) / done[i]!));
    if (us[1]! < us[0]!) lower++;
    console.log(
      `round ${r}: A ${us[0]} µs/req (${done[0]} req), B ${us[1]} µs/req (${done[1]} req), B−A ${us[1]! - us[0]!}`,
    );
  }
  console.log(`B lower in ${lower} of ${ROUNDS} rounds (A ${a}, B ${b})`);
} finally {
  for (const p of [...proxies, upstream]) await p.kill();
}
