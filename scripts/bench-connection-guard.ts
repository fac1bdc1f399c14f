/**
 * What the connection guard of the Bun seam costs (`bun run scripts/bench-connection-guard.ts`,
 * 127.0.0.1 only): the same fetch pass-through to the bench's fake upstream, once on plain
 * Bun.serve and once on the seam's `listen()` (src/runtime/bun/serve.ts: Bun's node:http accept hook,
 * the header deadline and the per-address cap of connections without their first headers). Separate
 * processes, cells interleaved, `ROUNDS` (default 7) of `SECONDS` (default 3) each; reported: CPU µs
 * per request of the server process (from /proc/PID/stat), median and all rounds, with kept-alive
 * clients (`C`, default 64) and with a new connection per request (`Connection: close`, 16 clients).
 *
 * @module
 */

import { envNumber } from "./bench-env.ts";
import { cpuUs, spawnListening } from "./bench-proc.ts";

const role = process.argv[2] ?? "main";

async function passThrough(req: Request, upstream: string): Promise<Response> {
  const res = await fetch(`${upstream}/backend-api/codex/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: await req.text(),
  });
  return new Response(res.body, { status: res.status, headers: { "content-type": "text/event-stream" } });
}

if (role === "upstream") {
  const { serveUpstream } = await import("./bench-servers.ts");
  await serveUpstream();
} else if (role === "plain") {
  const upstream = process.argv[3]!;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    development: false,
    // The seam's own per-request calls, so only the guard differs.
    fetch(req, srv) {
      srv.timeout(req, 0);
      srv.requestIP(req);
      return passThrough(req, upstream);
    },
  });
  console.log(`PORT ${server.port}`);
} else if (role === "guarded") {
  const upstream = process.argv[3]!;
  const { listen } = await import("../src/runtime/bun/serve.ts");
  const l = listen((req) => passThrough(req, upstream), {
    host: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 2 ** 40,
    connectionIdleTimeoutSeconds: 60,
    headersTimeoutSeconds: 10,
    maxPendingConnectionsPerAddress: 100_000,
  });
  if (!l.guarded) throw new Error("this Bun's node:http does not expose its server: nothing to measure");
  console.log(`PORT ${l.port}`);
} else {
  const spawn = (args: string[]) => spawnListening(["bun", import.meta.path, ...args]);
  const upstream = await spawn(["upstream"]);
  const targets = {
    "Bun.serve": await spawn(["plain", upstream.url]),
    "seam listen()": await spawn(["guarded", upstream.url]),
  };
  const SECONDS = envNumber("SECONDS", 3);
  const ROUNDS = envNumber("ROUNDS", 7);
  const body = JSON.stringify({ model: "gpt-5.2", input: "hi" });
  for (const [label, conns, close] of [
    ["kept-alive", envNumber("C", 64), false],
    ["new connection per request", 16, true],
  ] as const) {
    const res = new Map<string, number[]>();
    for (let r = 0; r < ROUNDS; r++) {
      const order = Object.entries(targets);
      if (r % 2) order.reverse();
      for (const [name, t] of order) {
        let n = 0;
        let errors = 0;
        const until = performance.now() + SECONDS * 1000;
        const c0 = cpuUs(t.pid);
        await Promise.all(
          Array.from({ length: conns }, async () => {
            while (performance.now() < until) {
              try {
                const x = await fetch(t.url, {
                  method: "POST",
                  headers: { "content-type": "application/json", ...(close ? { connection: "close" } : {}) },
                  body,
                  keepalive: !close,
                });
                if (!(await x.text()).includes("response.completed")) errors++;
              } catch {
                errors++;
              }
              n++;
            }
          }),
        );
        res.set(name, [...(res.get(name) ?? []), (cpuUs(t.pid) - c0) / n]);
        if (errors) console.log(`${name}: ${errors} errors of ${n}`);
      }
    }
    console.log(`\n${label}, ${conns} clients: server CPU µs per request`);
    for (const [name, v] of res) {
      const sorted = [...v].sort((a, b) => a - b);
      console.log(
        `  ${name.padEnd(14)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0).padStart(4)}   rounds ${v.map((x) => x.toFixed(0)).join(" ")}`,
      );
    }
  }
  for (const t of [...Object.values(targets), upstream]) t.proc.kill();
}
