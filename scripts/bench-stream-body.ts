/**
 * `bun scripts/bench-stream-body.ts`: what a client body fed from JavaScript costs, in a bare Bun
 * proxy in front of the bench's fake upstream (short answer; `ANSWER=bench-long-stream`: the
 * 1,000-event one, `ANSWER=bench-real-stream`: the short one with real-sized events; 127.0.0.1 only). Variants, each its
 * own process, cells interleaved, `ROUNDS` (default 8) × `SECONDS` (default 2) at `CONNS` (64):
 * `native` hands the upstream body to the Response (the bench's pass-through), `pull` reads it
 * chunk by chunk and enqueues into a standard ReadableStream (what the gateway did), `push` writes
 * each chunk to `pushStream` (src/runtime/bun/push-stream.ts), `gateway` runs the gateway's own
 * stream path on the upstream body (the attempt's first-event check, `ProxyStream` with the Codex
 * shaper, `toReadableStream`: what a streamed Codex answer costs in codex-lb besides routing, auth
 * and logs; `STREAM_SHAPER=responses`: the `/v1/responses` stream shaper instead, which passes
 * by type; `STREAM_SHAPER=collector`: the answer assembled as one JSON object, as `/v1/responses`
 * without `stream` does; `STREAM_SHAPER=chat`: the streamed Chat Completions shaper, as
 * `/v1/chat/completions` with `stream: true`). `VARIANTS` (comma-separated) picks some. Prints the proxy's CPU µs per request (from
 * /proc/PID/stat) of each round.
 *
 * @module
 */

import { systemClock } from "../src/core/clock.ts";
import { firstEvent, type OpenStream } from "../src/proxy/attempt.ts";
import { chatStreamShaper } from "../src/proxy/chat/response.ts";
import type { ProxyContext } from "../src/proxy/context.ts";
import { codexShaper, ResponseCollector, responsesStreamShaper } from "../src/proxy/shapers.ts";
import { drain, ProxyStream, toReadableStream } from "../src/proxy/stream.ts";
import { pushStream } from "../src/runtime/bun/push-stream.ts";
import { UpstreamEvents } from "../src/upstream/event-stream.ts";
import { envNumber } from "./bench-env.ts";
import { cpuUs, spawnListening } from "./bench-proc.ts";

const BENCH = `${import.meta.dir}/bench.ts`;
const SSE = { "content-type": "text/event-stream" };

const spawn = (cmd: string[]) => spawnListening(cmd);

function proxy(upstream: string, variant: string): void {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(req) {
      const res = await fetch(`${upstream}/backend-api/codex/responses`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: await req.text(),
      });
      if (variant === "native") return new Response(res.body, { headers: SSE });
      if (variant === "gateway") return gatewayStream(res);
      const reader = res.body!.getReader();
      if (variant === "push") {
        const body = pushStream(
          async (sink) => {
            for (;;) {
              const r = await reader.read();
              if (r.done) return;
              sink.write(r.value);
              const full = sink.flush();
              if (full) await full;
            }
          },
          (reason) => void reader.cancel(reason),
        );
        return new Response(body, { headers: SSE });
      }
      const body = new ReadableStream<Uint8Array>(
        {
          async pull(c) {
            const r = await reader.read();
            if (r.done) c.close();
            else c.enqueue(r.value);
          },
        },
        { highWaterMark: 0 },
      );
      return new Response(body, { headers: SSE });
    },
  });
  console.log(`PORT ${server.port}`);
}

/** Just enough of a gateway for its stream path: settings, clock, a live-quota sink, a lease. */
const gatewayCtx = {
  deps: {
    settings: { streamIdleTimeoutSeconds: 300, sseKeepaliveSeconds: 15 },
    clock: () => systemClock.now(),
  },
  quota: { record() {} },
} as unknown as ProxyContext;

async function gatewayStream(res: Response): Promise<Response> {
  const controller = new AbortController();
  const events = new UpstreamEvents(res.body!, 300_000, systemClock);
  const first = await firstEvent(events, res.headers, controller);
  if (first.kind !== "open") throw new Error("gateway: the first event failed");
  const open = {
    ...first.open,
    account: { id: "acc" },
    lease: { release() {} },
  } as unknown as OpenStream;
  if (process.env.STREAM_SHAPER === "collector") {
    const collector = new ResponseCollector();
    const ps = new ProxyStream(gatewayCtx, open, collector, () => {});
    await drain(ps);
    return Response.json(collector.result(ps.state));
  }
  const kind = process.env.STREAM_SHAPER;
  const shaper =
    kind === "responses"
      ? responsesStreamShaper()
      : kind === "chat"
        ? chatStreamShaper("gpt-5.2", false, systemClock.now())
        : codexShaper;
  const ps = new ProxyStream(gatewayCtx, open, shaper, () => {});
  return new Response(toReadableStream(ps, 15_000, systemClock), { headers: SSE });
}

if (process.argv[2] === "proxy") proxy(process.argv[3]!, process.argv[4]!);
else {
  const up = await spawn(["bun", BENCH, "upstream"]);
  const variants = (process.env.VARIANTS ?? "native,pull,push,gateway").split(",");
  const procs = [];
  for (const v of variants)
    procs.push({ v, ...(await spawn(["bun", import.meta.path, "proxy", up.url, v])) });
  const body = JSON.stringify({
    model: "gpt-5.2",
    input: [{ role: "user", content: process.env.ANSWER ?? "benchmark" }],
  });
  const seconds = envNumber("SECONDS", 2);
  const conns = envNumber("CONNS", 64);
  const rows: Record<string, number[]> = {};
  for (let round = 0; round < envNumber("ROUNDS", 8); round++) {
    for (const p of procs) {
      let n = 0;
      const until = performance.now() + seconds * 1000;
      const c0 = cpuUs(p.proc.pid);
      await Promise.all(
        Array.from({ length: conns }, async () => {
          while (performance.now() < until) {
            const r = await fetch(`${p.url}/`, { method: "POST", body });
            const text = await r.text();
            // A Responses stream ends with its terminal event, a Chat stream with `[DONE]`.
            if (!text.includes("response.completed") && !text.includes("data: [DONE]"))
              throw new Error(`${p.v}: bad answer`);
            n++;
          }
        }),
      );
      const row = rows[p.v] ?? [];
      row.push(Math.round((cpuUs(p.proc.pid) - c0) / n));
      rows[p.v] = row;
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [v, xs] of Object.entries(rows))
    console.log(`${v.padEnd(8)} median ${median(xs)} µs/request  rounds: ${xs.join(" ")}`);
  for (const p of procs) p.proc.kill();
  up.proc.kill();
}
