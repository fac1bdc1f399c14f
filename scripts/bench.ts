/**
 * `bun run bench`: how much codex-lb costs on top of a bare pass-through, on 127.0.0.1 only.
 *
 * One run starts three servers as separate processes — a fake upstream that streams a fixed SSE
 * answer, a minimal Bun `fetch` pass-through proxy (the practical limit for any proxy), and
 * codex-lb (request logging on, its real built-in plugins, one account) — then sends the same
 * load straight to the upstream, through the pass-through and through codex-lb, with 1 and 64
 * concurrent clients, and prints requests/s and p50/p99 latency, the latency added over the direct
 * path, and codex-lb's throughput as a share of the pass-through's. Bounded: each cell runs for
 * `BENCH_SECONDS` (default 3 s), the whole run stays under a minute.
 *
 * `bun run bench --postgres` adds a row: three codex-lb replicas on one throw-away PostgreSQL
 * server (tests/support/pg-server.ts), requests spread round-robin over them, and prints the
 * latency PostgreSQL adds per request over the single SQLite gateway.
 *
 * @module
 */
import { fixedAnswer, serveGateway, servePassthrough, serveUpstream } from "./bench-servers.ts";

const role = process.argv[2] ?? "main";
const POSTGRES = process.argv.includes("--postgres");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = [1, 64];

interface Cell {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

const BODY = JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: "benchmark" }] });

async function load(target: string | readonly string[], concurrency: number, seconds: number): Promise<Cell> {
  const urls = typeof target === "string" ? [target] : target;
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const until = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const t = performance.now();
      // Round robin over replicas, as a load balancer would.
      const url = urls[next++ % urls.length]!;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: BODY,
        });
        const text = await res.text();
        if (res.status !== 200 || !text.includes("response.completed")) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors };
}

async function spawnRole(name: string, ...args: string[]): Promise<{ url: string; kill(): Promise<void> }> {
  const proc = Bun.spawn(["bun", import.meta.path, name, ...args], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let buf = "";
  const deadline = Date.now() + 15_000;
  while (!/PORT (\d+)/.test(buf)) {
    if (Date.now() > deadline) throw new Error(`${name} did not start`);
    const r = await reader.read();
    if (r.done) throw new Error(`${name} exited before listening`);
    buf += new TextDecoder().decode(r.value);
  }
  reader.releaseLock();
  const port = /PORT (\d+)/.exec(buf)![1];
  return {
    url: `http://127.0.0.1:${port}`,
    kill: async () => {
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(3000)]);
      proc.kill("SIGKILL");
    },
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const upstream = await spawnRole("upstream");
  const pass = await spawnRole("passthrough", upstream.url);
  const gateway = await spawnRole("gateway", upstream.url);
  const targets: [string, string | string[]][] = [
    ["direct", `${upstream.url}/backend-api/codex/responses`],
    ["pass-through", `${pass.url}/`],
    ["codex-lb", `${gateway.url}/backend-api/codex/responses`],
  ];
  const stops: (() => Promise<void> | void)[] = [];
  if (POSTGRES) {
    const { startPgServer } = await import("../tests/support/pg-server.ts");
    const pgServer = await startPgServer();
    stops.push(() => pgServer.stop());
    const dbUrl = new URL(pgServer.url);
    dbUrl.pathname = "/bench";
    const { default: pg } = await import("pg");
    const admin = new pg.Client({ connectionString: pgServer.url });
    await admin.connect();
    await admin.query("CREATE DATABASE bench");
    await admin.end();
    process.env.BENCH_KEY = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
    const first = await spawnRole("gateway", upstream.url, dbUrl.toString(), "seed");
    const others = await Promise.all(
      [1, 2].map(() => spawnRole("gateway", upstream.url, dbUrl.toString(), "no-seed")),
    );
    const replicas = [first, ...others];
    for (const r of replicas) stops.unshift(() => r.kill());
    targets.push(["codex-lb ×3 pg", replicas.map((r) => `${r.url}/backend-api/codex/responses`)]);
  }
  try {
    // Warm-up: JIT, connection pools, the store.
    for (const [, url] of targets) await load(url, 8, 0.5);
    const results = new Map<string, Cell>();
    for (const c of CONCURRENCY) {
      for (const [name, url] of targets) results.set(`${name}@${c}`, await load(url, c, SECONDS));
    }
    const rows: string[][] = [
      [
        "target",
        "clients",
        "req/s",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "vs pass-through",
        "errors",
      ],
    ];
    for (const c of CONCURRENCY) {
      const direct = results.get(`direct@${c}`)!;
      const passCell = results.get(`pass-through@${c}`)!;
      for (const [name] of targets) {
        const r = results.get(`${name}@${c}`)!;
        rows.push([
          name,
          String(c),
          r.rps.toFixed(0),
          r.p50.toFixed(2),
          r.p99.toFixed(2),
          name === "direct" ? "-" : (r.p50 - direct.p50).toFixed(2),
          name === "direct" ? "-" : (r.p99 - direct.p99).toFixed(2),
          name === "direct" ? "-" : `${((r.rps / passCell.rps) * 100).toFixed(0)}%`,
          String(r.errors),
        ]);
      }
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(" | ")} |`;
    console.log(line(rows[0]!));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    for (const r of rows.slice(1)) console.log(line(r));
    if (POSTGRES) {
      for (const c of CONCURRENCY) {
        const lite = results.get(`codex-lb@${c}`)!;
        const pgCell = results.get(`codex-lb ×3 pg@${c}`)!;
        console.log(
          `PostgreSQL (3 replicas) vs SQLite (1 gateway), ${c} client(s): ${(pgCell.p50 - lite.p50).toFixed(2)} ms added p50, ${(pgCell.p99 - lite.p99).toFixed(2)} ms added p99`,
        );
      }
    }
    console.log(
      `\n${SECONDS} s per cell, fixed ${fixedAnswer().length}-byte SSE answer, all on 127.0.0.1; total ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    await Promise.all([gateway.kill(), pass.kill(), upstream.kill()]);
    for (const stop of stops) await stop();
  }
}

if (role === "upstream") await serveUpstream();
else if (role === "passthrough") await servePassthrough(process.argv[3]!);
else if (role === "gateway")
  await serveGateway(process.argv[3]!, process.argv[4], process.argv[5] !== "no-seed");
else await main();
