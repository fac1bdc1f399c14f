/**
 * `bun run scripts/bench-cold-start.ts [binary]`: the compiled binary's size and cold start: from
 * spawning `codex-lb serve` on a fresh data dir to the first `/health` answer, and to the first
 * dashboard page with its script (the embedded files are read on first use). 127.0.0.1 only; 10
 * runs, median and max.
 *
 * @module
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = process.argv[2] ?? "dist/codex-lb";
const RUNS = 10;

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port as number;
  await s.stop(true);
  return port;
}

async function waitFor(url: string, deadline: number): Promise<Response> {
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return res;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`no answer from ${url}`);
    await Bun.sleep(2);
  }
}

const health: number[] = [];
const page: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = mkdtempSync(join(tmpdir(), "codex-lb-cold-"));
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([bin, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      CODEX_LB_DATA_DIR: dir,
      CODEX_LB_PORT: String(port),
      CODEX_LB_LOG_LEVEL: "warn",
    },
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitFor(`${base}/health`, t0 + 15_000);
    health.push(performance.now() - t0);
    const first = await fetch(`${base}/`);
    // A binary without the dashboard (an older build) answers 404: only /health is timed.
    if (first.ok) {
      const script = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(await first.text())?.[1];
      if (!script) throw new Error("no dashboard script in the page");
      await (await waitFor(`${base}${script}`, t0 + 15_000)).arrayBuffer();
      page.push(performance.now() - t0);
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const row = (name: string, xs: number[]) =>
  console.log(
    `| ${name.padEnd(30)} | ${median(xs).toFixed(0).padStart(6)} | ${Math.max(...xs)
      .toFixed(0)
      .padStart(6)} |`,
  );
console.log(`binary ${bin}: ${(statSync(bin).size / 1e6).toFixed(1)} MB`);
console.log("| cold start (fresh data dir)    | median ms | max ms |");
console.log("|--------------------------------|--------|--------|");
row("spawn → first /health", health);
if (page.length) row("spawn → dashboard page + script", page);
