/**
 * `bun run bench`: what codex-lb costs on top of a bare pass-through, on 127.0.0.1 only.
 *
 * Separate processes: a fake upstream (answers picked by a marker in the body, see
 * bench-servers.ts), a minimal Bun `fetch` pass-through proxy (the practical limit for any proxy),
 * codex-lb with everything on (its built-in plugins, request logs, API-key auth with a key that has
 * a limit) and one account, and the same with 200 accounts. The same load is sent to each, cells
 * interleaved, `BENCH_ROUNDS` times (default 3); each cell runs `BENCH_SECONDS` (default 2).
 *
 * Reported per cell (median of the rounds, with the min–max spread): CPU time per request of the
 * proxy process and of the upstream (from /proc/PID/stat, so it does not depend on how busy the
 * shared machine is, unlike req/s), req/s, p50/p99 and the latency added over the direct path.
 * Cells: a short answer (36 events), a 256 KB request body, a 1,000-event answer, 200 accounts, at
 * 1 and 64 connections. Then a memory run: `BENCH_STREAMS` (default 1000,10000) concurrent slow
 * streams through each proxy (fresh processes), peak RSS (VmHWM) and how many ran at once.
 *
 * Then the Responses WebSocket: turns per second over one socket and over 64 sockets (each socket
 * sends its next `response.create` when the last turn's `response.completed` arrived), straight to
 * the fake upstream, through codex-lb's WebSocket (upstream WebSocket too), and codex-lb's HTTP SSE
 * for the same answer, interleaved the same way.
 *
 * The memory run also builds the compiled binary (scripts/build.ts, into a temp dir) and runs it as
 * users do (`codex-lb serve`) as a third row; `--no-binary` leaves that row out. A proxy holds two
 * sockets per stream, so the stream count is capped by the open-file limit (the row says so).
 *
 * `bun run bench -- --no-memory` skips the memory run; `--only-memory` runs just it;
 * `--only-websocket` runs just the WebSocket table. `bun run bench -- --postgres` compares one gateway
 * on SQLite with three replicas on one PostgreSQL instead (scripts/bench-postgres.ts).
 * `bun run bench -- --metrics` compares three gateways on the short answer instead: metrics off
 * (`CODEX_LB_METRICS_ENABLED=false`), metrics on (the default), and metrics on with OpenTelemetry
 * trace export to a sink; cells interleaved in a rotating order, `BENCH_ROUNDS` (default 7 here),
 * each round's CPU per request compared with the same round's metrics-off cell.
 *
 * @module
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envNumber } from "./bench-env.ts";
import {
  type Cell,
  cpuUs,
  load,
  median,
  type Listening as Proc,
  spawnListening,
  spread,
  statusMb,
  stopProcess,
  table,
} from "./bench-proc.ts";
import {
  bigBody,
  gatewayEnv,
  LONG_MARKER,
  SHORT_BODY as SHORT,
  SLOW_MARKER,
  serveGateway,
  servePassthrough,
  serveUpstream,
} from "./bench-servers.ts";

const role = process.argv[2] && !process.argv[2].startsWith("-") ? process.argv[2] : "main";
const SECONDS = envNumber("BENCH_SECONDS", 2);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
const CONCURRENCY = [1, 64] as const;
const STREAMS = (process.env.BENCH_STREAMS ?? "1000,10000").split(",").map(Number);

function spawnRole(name: string, args: string[] = [], env: Record<string, string> = {}) {
  return spawnListening(["bun", import.meta.path, name, ...args], { env: { ...process.env, ...env } });
}

// ---------------------------------------------------------------------------------------------
// The throughput/CPU run

const LONG = JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: LONG_MARKER }] });

interface Target {
  readonly scenario: string;
  readonly name: string;
  readonly url: string;
  readonly body: string;
  readonly headers: Record<string, string>;
  readonly proxy: Proc | null;
}

async function throughput(upstream: Proc, pass: Proc, gw: Proc, gw200: Proc): Promise<void> {
  const json = { "content-type": "application/json" };
  const keyed = (p: Proc) => ({ ...json, authorization: `Bearer ${p.key}` });
  const codexPath = "/backend-api/codex/responses";
  const targets: Target[] = [];
  const add = (scenario: string, body: string) => {
    targets.push({ scenario, name: "pass-through", url: `${pass.url}/`, body, headers: json, proxy: pass });
    targets.push({
      scenario,
      name: "codex-lb",
      url: `${gw.url}${codexPath}`,
      body,
      headers: keyed(gw),
      proxy: gw,
    });
  };
  targets.push({
    scenario: "short answer",
    name: "direct",
    url: `${upstream.url}${codexPath}`,
    body: SHORT,
    headers: json,
    proxy: null,
  });
  add("short answer", SHORT);
  add(`${Math.round(bigBody().length / 1024)} KB body`, bigBody());
  add("1,000-event answer", LONG);
  targets.push({
    scenario: "200 accounts",
    name: "codex-lb",
    url: `${gw200.url}${codexPath}`,
    body: SHORT,
    headers: keyed(gw200),
    proxy: gw200,
  });

  const pidsOf = (t: Target) => ({ proxy: t.proxy?.pid ?? null, upstream: upstream.pid });
  // Warm-up: JIT, connection pools, the store, the key cache.
  for (const t of targets) await load(t.url, t.headers, t.body, 8, 0.5, pidsOf(t));
  const cells = new Map<string, Cell[]>();
  const keyOf = (t: Target, c: number) => `${t.scenario}|${t.name}|${c}`;
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of CONCURRENCY) {
      for (const t of targets) {
        const cell = await load(t.url, t.headers, t.body, c, SECONDS, pidsOf(t));
        cells.set(keyOf(t, c), [...(cells.get(keyOf(t, c)) ?? []), cell]);
      }
    }
  }
  const directP = (c: number, p: "p50" | "p99") =>
    median(cells.get(`short answer|direct|${c}`)!.map((x) => x[p]));
  const rows = [
    [
      "scenario",
      "target",
      "conns",
      "proxy CPU µs/req",
      "upstream µs/req",
      "req/s",
      "p50 ms",
      "p99 ms",
      "added p50 ms",
      "added p99 ms",
      "errors",
    ],
  ];
  for (const c of CONCURRENCY) {
    for (const t of targets) {
      const xs = cells.get(keyOf(t, c))!;
      const direct = t.name === "direct";
      rows.push([
        t.scenario,
        t.name,
        String(c),
        direct ? "-" : spread(xs.map((x) => x.proxyUs!)),
        spread(xs.map((x) => x.upstreamUs)),
        spread(xs.map((x) => x.rps)),
        median(xs.map((x) => x.p50)).toFixed(2),
        median(xs.map((x) => x.p99)).toFixed(2),
        direct
          ? "-"
          : spread(
              xs.map((x) => x.p50 - directP(c, "p50")),
              2,
            ),
        direct
          ? "-"
          : spread(
              xs.map((x) => x.p99 - directP(c, "p99")),
              2,
            ),
        String(xs.reduce((s, x) => s + x.errors, 0)),
      ]);
    }
  }
  console.log(table(rows));

  // The goals, from the same cells.
  const cpu = (scenario: string, name: string, c: number) =>
    cells.get(`${scenario}|${name}|${c}`)!.map((x) => x.proxyUs!);
  const ratio = (scenario: string, gwScenario = scenario, c = 64) => {
    const g = cpu(gwScenario, "codex-lb", c);
    const p = cpu(scenario, "pass-through", c);
    return g.map((x, i) => x / p[i]!);
  };
  const big = `${Math.round(bigBody().length / 1024)} KB body`;
  const extraBig = cpu(big, "codex-lb", 64).map((x, i) => x - cpu("short answer", "codex-lb", 64)[i]!);
  const extraBigPass = cpu(big, "pass-through", 64).map(
    (x, i) => x - cpu("short answer", "pass-through", 64)[i]!,
  );
  const gwAdded = cells.get("short answer|codex-lb|1")!.map((x) => x.p50 - directP(1, "p50"));
  const passAdded = cells.get("short answer|pass-through|1")!.map((x) => x.p50 - directP(1, "p50"));
  const goals = [
    ["goal", "measured: median (min–max of rounds)", "target"],
    ["codex-lb CPU ÷ pass-through CPU, short answer, c64", `${spread(ratio("short answer"), 2)}×`, "≤ 3×"],
    ["same, 200 accounts", `${spread(ratio("short answer", "200 accounts"), 2)}×`, "≤ 3×"],
    ["same, 1,000-event answer", `${spread(ratio("1,000-event answer"), 2)}×`, "≤ 3×"],
    [
      "codex-lb added p50 at 1 connection (pass-through's)",
      `${spread(gwAdded, 3)} ms (${spread(passAdded, 3)} ms)`,
      "≤ 0.15 ms",
    ],
    [
      `extra CPU for the ${big} (pass-through's)`,
      `${spread(extraBig)} µs (${spread(extraBigPass)} µs)`,
      "≤ 100 µs",
    ],
  ];
  console.log(`\n${table(goals)}`);
}

// ---------------------------------------------------------------------------------------------
// The WebSocket run

/** `sockets` Responses WebSockets, each sending turn after turn for `seconds`; a turn ends at `response.completed`. */
async function wsLoad(
  url: string,
  headers: Record<string, string>,
  sockets: number,
  seconds: number,
  pids: { proxy: number | null; upstream: number },
): Promise<Cell> {
  const latencies: number[] = [];
  let errors = 0;
  const turn = JSON.stringify({ type: "response.create", ...JSON.parse(SHORT) });
  const one = () =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(url, { headers } as unknown as string[]);
      const until = performance.now() + seconds * 1000;
      let t = 0;
      const next = () => {
        if (performance.now() >= until) {
          ws.close();
          return;
        }
        t = performance.now();
        ws.send(turn);
      };
      ws.onopen = next;
      ws.onmessage = (e) => {
        const text = String(e.data);
        if (text.startsWith('{"type":"response.completed"')) {
          latencies.push(performance.now() - t);
          next();
        } else if (text.startsWith('{"type":"error"') || text.startsWith('{"type":"response.failed"')) {
          errors++;
          latencies.push(performance.now() - t);
          next();
        }
      };
      ws.onerror = () => {
        errors++;
      };
      ws.onclose = () => resolve();
    });
  const cpu0 = pids.proxy === null ? 0 : cpuUs(pids.proxy);
  const up0 = cpuUs(pids.upstream);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: sockets }, one));
  const elapsed = (performance.now() - t0) / 1000;
  const n = Math.max(1, latencies.length);
  const proxyUs = pids.proxy === null ? null : (cpuUs(pids.proxy) - cpu0) / n;
  const upstreamUs = (cpuUs(pids.upstream) - up0) / n;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(n - 1, Math.floor(p * n))] ?? 0;
  return {
    n: latencies.length,
    rps: latencies.length / elapsed,
    p50: q(0.5),
    p99: q(0.99),
    errors,
    proxyUs,
    upstreamUs,
  };
}

async function websocketRun(upstream: Proc, gw: Proc): Promise<void> {
  const codexPath = "/backend-api/codex/responses";
  const auth = { authorization: `Bearer ${gw.key}` };
  const ws = (u: string) => u.replace(/^http/, "ws");
  const targets = [
    {
      name: "direct (WebSocket)",
      run: (c: number, s: number) =>
        wsLoad(`${ws(upstream.url)}${codexPath}`, {}, c, s, { proxy: null, upstream: upstream.pid }),
    },
    {
      name: "codex-lb WebSocket",
      run: (c: number, s: number) =>
        wsLoad(`${ws(gw.url)}${codexPath}`, auth, c, s, { proxy: gw.pid, upstream: upstream.pid }),
    },
    {
      name: "codex-lb HTTP SSE",
      run: (c: number, s: number) =>
        load(`${gw.url}${codexPath}`, { "content-type": "application/json", ...auth }, SHORT, c, s, {
          proxy: gw.pid,
          upstream: upstream.pid,
        }),
    },
  ];
  for (const t of targets) await t.run(8, 0.5);
  const cells = new Map<string, Cell[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of CONCURRENCY) {
      for (const t of targets) {
        const key = `${t.name}|${c}`;
        cells.set(key, [...(cells.get(key) ?? []), await t.run(c, SECONDS)]);
      }
    }
  }
  const rows = [["target", "sockets / conns", "turns/s", "p50 ms", "p99 ms", "proxy CPU µs/turn", "errors"]];
  for (const c of CONCURRENCY) {
    for (const t of targets) {
      const xs = cells.get(`${t.name}|${c}`)!;
      rows.push([
        t.name,
        String(c),
        spread(xs.map((x) => x.rps)),
        median(xs.map((x) => x.p50)).toFixed(2),
        median(xs.map((x) => x.p99)).toFixed(2),
        t.name.startsWith("direct") ? "-" : spread(xs.map((x) => x.proxyUs!)),
        String(xs.reduce((s, x) => s + x.errors, 0)),
      ]);
    }
  }
  console.log(
    `\nResponses WebSocket: turns over 1 and 64 sockets (short answer, ${SHORT.length} B request):\n${table(rows)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// The memory run

/** Client role: opens `n` slow streams at once (ramped), reads them to the end, prints a summary. */
async function streamClient(url: string, n: number, key: string): Promise<void> {
  const body = JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: SLOW_MARKER }] });
  const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };
  let open = 0;
  let peak = 0;
  let ok = 0;
  let errors = 0;
  const t0 = performance.now();
  // What went wrong, counted by kind (stderr): timeouts, resets, gateway refusals.
  const kinds = new Map<string, number>();
  const note = (kind: string) => kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  const one = async () => {
    let started = false;
    try {
      const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(60_000) });
      const reader = res.body!.getReader();
      let text = "";
      const dec = new TextDecoder();
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        if (!started) {
          started = true;
          peak = Math.max(peak, ++open);
        }
        text += dec.decode(r.value, { stream: true });
      }
      if (res.status === 200 && text.includes("response.completed")) ok++;
      else {
        errors++;
        note(`status ${res.status}${started ? " after bytes" : ""}: ${text.slice(0, 120)}`);
      }
    } catch (e) {
      errors++;
      note(`${started ? "after bytes" : "before bytes"} ${(e as Error).name}: ${(e as Error).message}`);
    } finally {
      if (started) open--;
    }
  };
  const all: Promise<void>[] = [];
  // Ramp: 250 connections every 25 ms, so the listen backlog never overflows.
  for (let i = 0; i < n; i++) {
    all.push(one());
    if (i % 250 === 249) await Bun.sleep(25);
  }
  await Promise.all(all);
  for (const [kind, count] of kinds) console.error(`stream-client error x${count}: ${kind}`);
  console.log(JSON.stringify({ ok, errors, peak, seconds: (performance.now() - t0) / 1000 }));
}

/**
 * The compiled binary as users run it (`codex-lb serve`, built by scripts/build.ts into a temp
 * dir), on a data dir the source gateway seeded (`seed` role: the same account and key). It listens
 * on port 0 (a free port picked at bind, no probe-then-release race) and its port is read from its
 * "codex-lb listening" log line; the log goes to a file in the data dir (no reader, as /dev/null is
 * for the source gateway). On any failure the binary is killed and the data dir removed.
 */
async function startBinary(binary: string, upstream: Proc, env: Record<string, string>): Promise<Proc> {
  const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-bench-bin-"));
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  const stop = async () => {
    if (proc) await stopProcess(proc);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const seed = Bun.spawn(["bun", import.meta.path, "seed", upstream.url, "1", dataDir], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const key = /KEY (\S+)/.exec(await new Response(seed.stdout).text())?.[1];
    if ((await seed.exited) !== 0 || !key) throw new Error("seeding the binary's data dir failed");
    const logFile = join(dataDir, "codex-lb.log");
    const started = Bun.spawn([binary, "serve"], {
      cwd: dataDir,
      // Only the binary's own settings (it refuses unknown CODEX_LB_* names).
      env: {
        PATH: process.env.PATH ?? "",
        HOME: dataDir,
        ...gatewayEnv(upstream.url, dataDir),
        ...env,
      },
      stdout: Bun.file(logFile),
      stderr: "inherit",
    });
    proc = started;
    let port: string | undefined;
    for (let i = 0; !port; i++) {
      if (i === 600 || started.exitCode !== null) throw new Error("the binary did not start");
      await Bun.sleep(50);
      const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
      port = /^.*"msg":"codex-lb listening".*$/m.exec(log)?.[0].match(/"port":(\d+)/)?.[1];
    }
    return { proc: started, pid: started.pid, url: `http://127.0.0.1:${port}`, key, kill: stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Builds the binary with scripts/build.ts (its flags) into a temp dir; null (and a note) if that fails. */
function buildBinary(): string | null {
  const dir = mkdtempSync(join(tmpdir(), "codex-lb-bench-build-"));
  const out = join(dir, "codex-lb");
  const r = Bun.spawnSync(["bun", `${import.meta.dir}/build.ts`, out], { cwd: `${import.meta.dir}/..` });
  if (r.exitCode === 0) return out;
  rmSync(dir, { recursive: true, force: true });
  console.error(`building the binary failed; no binary row:\n${r.stderr.toString()}`);
  return null;
}

async function memory(upstream: Proc): Promise<void> {
  const rows = [
    ["streams", "target", "ran at once", "completed", "errors", "idle RSS MB", "peak RSS MB", "s"],
  ];
  // A proxy holds two sockets per stream (client side, upstream side), so the streams it can run
  // are bounded by the open-file limit, which only a privileged process can raise past the hard
  // one (`ulimit -Hn`); 100 descriptors are left for the rest (a gateway uses about 15 idle).
  const fdLimit = Number(
    /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? 1024,
  );
  const binary = process.argv.includes("--no-binary") ? null : buildBinary();
  const targets = ["pass-through", "codex-lb", ...(binary ? ["codex-lb binary"] : [])] as const;
  // The build dir (a whole compiled binary) goes whatever happens below.
  try {
    for (const wanted of STREAMS) {
      const n = Math.min(wanted, Math.floor((fdLimit - 100) / 2));
      // Bun's fetch runs at most 256 requests at once unless told otherwise, in every process.
      const env = { BUN_CONFIG_MAX_HTTP_REQUESTS: String(Math.min(65_000, n + 256)) };
      // Room for every stream on the one account, for the source gateway and the binary alike.
      const maxStreams = String(n + 10);
      for (const name of targets) {
        const proxy =
          name === "pass-through"
            ? await spawnRole("passthrough", [upstream.url], env)
            : name === "codex-lb"
              ? await spawnRole("gateway", [upstream.url, "1"], { ...env, BENCH_MAX_STREAMS: maxStreams })
              : await startBinary(binary!, upstream, {
                  ...env,
                  CODEX_LB_ACCOUNT_MAX_STREAMS: maxStreams,
                });
        try {
          const url = name === "pass-through" ? `${proxy.url}/` : `${proxy.url}/backend-api/codex/responses`;
          await Bun.sleep(200);
          const idle = statusMb(proxy.pid, "VmRSS");
          const client = Bun.spawn(
            ["bun", import.meta.path, "stream-client", url, String(n), proxy.key ?? "none"],
            {
              stdout: "pipe",
              stderr: "inherit",
              env: { ...process.env, ...env },
            },
          );
          const out = await Promise.race([
            new Response(client.stdout).text(),
            Bun.sleep(90_000).then(() => ""),
          ]);
          client.kill();
          const s = JSON.parse(out || '{"ok":0,"errors":-1,"peak":0,"seconds":0}') as Record<string, number>;
          rows.push([
            n === wanted ? String(n) : `${n} (of ${wanted}: open-file limit ${fdLimit})`,
            name,
            String(s.peak),
            String(s.ok),
            String(s.errors),
            idle.toFixed(0),
            statusMb(proxy.pid, "VmHWM").toFixed(0),
            Number(s.seconds).toFixed(1),
          ]);
        } finally {
          await proxy.kill();
        }
      }
    }
  } finally {
    if (binary) rmSync(join(binary, ".."), { recursive: true, force: true });
  }
  console.log(
    `\nConcurrent slow streams (${process.env.BENCH_SLOW_SECONDS ?? 10} events 1 s apart each), fresh proxy processes (codex-lb: from source as the other tables; codex-lb binary: \`codex-lb serve\` built by scripts/build.ts):\n${table(rows)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// The cost of observability: metrics on / off, trace export on

async function observabilityRun(upstream: Proc): Promise<void> {
  const rounds = envNumber("BENCH_ROUNDS", 7);
  const codexPath = "/backend-api/codex/responses";
  const gws = {
    "metrics off": await spawnRole("gateway", [upstream.url, "1"], { CODEX_LB_METRICS_ENABLED: "false" }),
    "metrics on (default)": await spawnRole("gateway", [upstream.url, "1"], {
      CODEX_LB_METRICS_ENABLED: "true",
    }),
    "metrics on + OTLP traces": await spawnRole("gateway", [upstream.url, "1"], {
      CODEX_LB_METRICS_ENABLED: "true",
      CODEX_LB_OTEL_TRACES_ENDPOINT: `${upstream.url}/v1/traces`,
    }),
  };
  try {
    const names = Object.keys(gws) as (keyof typeof gws)[];
    const run = (name: keyof typeof gws, c: number, s: number) => {
      const gw = gws[name];
      const headers = { "content-type": "application/json", authorization: `Bearer ${gw.key}` };
      return load(`${gw.url}${codexPath}`, headers, SHORT, c, s, { proxy: gw.pid, upstream: upstream.pid });
    };
    for (const n of names) await run(n, 8, 1);
    const cells = new Map<string, Cell[]>();
    for (let r = 0; r < rounds; r++) {
      for (const c of CONCURRENCY) {
        // Rotate the order each round so no gateway always runs first or last.
        for (let i = 0; i < names.length; i++) {
          const n = names[(i + r) % names.length]!;
          cells.set(`${n}|${c}`, [...(cells.get(`${n}|${c}`) ?? []), await run(n, c, SECONDS)]);
        }
      }
    }
    const rows = [
      ["gateway", "conns", "proxy CPU µs/req", "cost vs metrics off (paired by round)", "req/s", "errors"],
    ];
    for (const c of CONCURRENCY) {
      const off = cells.get(`metrics off|${c}`)!;
      for (const n of names) {
        const xs = cells.get(`${n}|${c}`)!;
        const paired = xs.map((x, i) => (100 * (x.proxyUs! - off[i]!.proxyUs!)) / off[i]!.proxyUs!);
        rows.push([
          n,
          String(c),
          spread(xs.map((x) => x.proxyUs!)),
          n === "metrics off" ? "-" : `${spread(paired, 1)} %`,
          spread(xs.map((x) => x.rps)),
          String(xs.reduce((s, x) => s + x.errors, 0)),
        ]);
      }
    }
    console.log(
      `Observability cost, short answer through codex-lb (${rounds} rounds × ${SECONDS} s per cell, interleaved):\n${table(rows)}`,
    );
  } finally {
    await Promise.all(Object.values(gws).map((g) => g.kill()));
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const args = process.argv.slice(2);
  const upstream = await spawnRole("upstream", [], {
    BENCH_SLOW_SECONDS: process.env.BENCH_SLOW_SECONDS ?? "10",
  });
  try {
    if (args.includes("--metrics")) {
      await observabilityRun(upstream);
    } else if (args.includes("--only-websocket")) {
      const gw = await spawnRole("gateway", [upstream.url, "1"]);
      try {
        await websocketRun(upstream, gw);
      } finally {
        await gw.kill();
      }
    } else if (!args.includes("--only-memory")) {
      const pass = await spawnRole("passthrough", [upstream.url]);
      const gw = await spawnRole("gateway", [upstream.url, "1"]);
      const gw200 = await spawnRole("gateway", [upstream.url, "200"]);
      try {
        await throughput(upstream, pass, gw, gw200);
        await websocketRun(upstream, gw);
      } finally {
        await Promise.all([gw.kill(), gw200.kill(), pass.kill()]);
      }
    }
    if (!args.includes("--no-memory") && !args.includes("--only-websocket") && !args.includes("--metrics"))
      await memory(upstream);
    console.log(
      `\n${ROUNDS} rounds × ${SECONDS} s per cell, all on 127.0.0.1; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
  } finally {
    await upstream.kill();
  }
}

if (role === "upstream") await serveUpstream();
else if (role === "passthrough") await servePassthrough(process.argv[3]!);
else if (role === "gateway") await serveGateway(process.argv[3]!, Number(process.argv[4] ?? 1));
else if (role === "seed")
  await serveGateway(process.argv[3]!, Number(process.argv[4] ?? 1), process.argv[5]!);
else if (role === "stream-client")
  await streamClient(process.argv[3]!, Number(process.argv[4]), process.argv[5]!);
else if (process.argv.includes("--postgres")) await (await import("./bench-postgres.ts")).benchPostgres();
else await main();
