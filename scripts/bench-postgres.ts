/**
 * `bun run bench --postgres`: one gateway on SQLite against three replicas on one PostgreSQL, on
 * 127.0.0.1 only. Starts a throw-away PostgreSQL server (tests/support/pg-server.ts), the bench's
 * fake upstream, one codex-lb on its SQLite file and three codex-lb replicas on one PostgreSQL
 * database (the first seeds the account and the API key, all share the encryption key); requests
 * go round robin over the replicas, as a load balancer would send them. Cells interleave
 * (`BENCH_ROUNDS`, default 3, × `BENCH_SECONDS`, default 2); the median round is printed, with the
 * latency PostgreSQL adds per request over the single SQLite gateway.
 *
 * @module
 */
import pg from "pg";
import { startPgServer } from "../tests/support/pg-server.ts";
import { envNumber } from "./bench-env.ts";
import { type Listening as Proc, spawnListening } from "./bench-proc.ts";
import { SHORT_BODY } from "./bench-servers.ts";

const SECONDS = envNumber("BENCH_SECONDS", 2);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
const CONCURRENCY = [1, 64] as const;
const BENCH = new URL("./bench.ts", import.meta.url).pathname;
const CODEX = "/backend-api/codex/responses";

function spawnRole(name: string, args: string[], env: Record<string, string> = {}) {
  return spawnListening(["bun", BENCH, name, ...args], { env: { ...process.env, ...env } });
}

interface Cell {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(urls: readonly string[], key: string | null, concurrency: number): Promise<Cell> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const until = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const url = urls[next++ % urls.length]!;
      const t = performance.now();
      try {
        const res = await fetch(url, { method: "POST", headers, body: SHORT_BODY });
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
  const n = latencies.length;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(n - 1, Math.floor(p * n))] ?? 0;
  return { rps: n / ((performance.now() - t0) / 1000), p50: q(0.5), p99: q(0.99), errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

export async function benchPostgres(): Promise<void> {
  const started = performance.now();
  const server = await startPgServer();
  const procs: Proc[] = [];
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query("CREATE DATABASE bench");
    await admin.end();
    const dbUrl = new URL(server.url);
    dbUrl.pathname = "/bench";
    const upstream = await spawnRole("upstream", []);
    procs.push(upstream);
    const lite = await spawnRole("gateway", [upstream.url, "1"]);
    procs.push(lite);
    const shared = {
      BENCH_DATABASE_URL: dbUrl.toString(),
      BENCH_KEY: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64"),
    };
    const first = await spawnRole("gateway", [upstream.url, "1"], shared);
    const others = await Promise.all([0, 1].map(() => spawnRole("gateway", [upstream.url, "0"], shared)));
    const replicas = [first, ...others];
    procs.push(...replicas);
    const targets = [
      { name: "direct", urls: [`${upstream.url}${CODEX}`], key: null },
      { name: "codex-lb, 1 on SQLite", urls: [`${lite.url}${CODEX}`], key: lite.key },
      { name: "codex-lb, 3 on PostgreSQL", urls: replicas.map((r) => `${r.url}${CODEX}`), key: first.key },
    ];
    for (const t of targets) await load(t.urls, t.key, 8); // warm-up
    const cells = new Map<string, Cell[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of CONCURRENCY) {
        for (const t of targets) {
          const k = `${t.name}@${c}`;
          cells.set(k, [...(cells.get(k) ?? []), await load(t.urls, t.key, c)]);
        }
      }
    }
    const med = (k: string) => {
      const list = cells.get(k)!;
      return {
        rps: median(list.map((x) => x.rps)),
        p50: median(list.map((x) => x.p50)),
        p99: median(list.map((x) => x.p99)),
        errors: list.reduce((a, x) => a + x.errors, 0),
      };
    };
    const rows = [
      ["target", "clients", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "errors"],
    ];
    for (const c of CONCURRENCY) {
      const direct = med(`direct@${c}`);
      for (const t of targets) {
        const r = med(`${t.name}@${c}`);
        const added = (v: number) => (t.name === "direct" ? "-" : v.toFixed(2));
        rows.push([
          t.name,
          String(c),
          r.rps.toFixed(0),
          r.p50.toFixed(2),
          r.p99.toFixed(2),
          added(r.p50 - direct.p50),
          added(r.p99 - direct.p99),
          String(r.errors),
        ]);
      }
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(" | ")} |`;
    console.log(
      [
        line(rows[0]!),
        `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
        ...rows.slice(1).map(line),
      ].join("\n"),
    );
    for (const c of CONCURRENCY) {
      const a = med(`codex-lb, 1 on SQLite@${c}`);
      const b = med(`codex-lb, 3 on PostgreSQL@${c}`);
      console.log(
        `PostgreSQL (3 replicas) vs SQLite (1 gateway), ${c} client(s): ${(b.p50 - a.p50).toFixed(2)} ms p50, ${(b.p99 - a.p99).toFixed(2)} ms p99 per request`,
      );
    }
    console.log(
      `\n${ROUNDS} rounds × ${SECONDS} s per cell, all on 127.0.0.1; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
  } finally {
    for (const p of procs.reverse()) await p.kill();
    server.stop();
  }
}

if (import.meta.main) await benchPostgres();
