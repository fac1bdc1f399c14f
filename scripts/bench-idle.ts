/**
 * Idle memory of the bench gateway (`bun run scripts/bench-idle.ts`): codex-lb started as in
 * `bun run bench` (scripts/bench-servers.ts: built-in plugins, request logs, key auth, one
 * account), left idle, then a full GC; next to it, a bare `Bun.serve` for reference. Each runs in
 * its own process, `--runs N` times (default 3); the median is reported.
 *
 * Per process it prints resident memory from /proc (VmRSS, split into anonymous memory and
 * file-backed pages: the latter are mostly the Bun executable's own code pages, shared and
 * reclaimable, but counted in RSS), and JavaScriptCore's heap after the GC. `--maps` also lists
 * the largest mappings of the last gateway run.
 *
 * @module
 */

interface Sample {
  rss: number;
  anon: number;
  file: number;
  heap: number;
  maps?: string;
}

const kb = (status: string, field: string) =>
  Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? 0);

async function sample(withMaps: boolean): Promise<Sample> {
  for (let i = 0; i < 3; i++) {
    Bun.gc(true);
    await Bun.sleep(100);
  }
  const status = await Bun.file("/proc/self/status").text();
  const { heapStats } = await import("bun:jsc");
  const out: Sample = {
    rss: kb(status, "VmRSS") / 1024,
    anon: kb(status, "RssAnon") / 1024,
    file: kb(status, "RssFile") / 1024,
    heap: heapStats().heapSize / 1048576,
  };
  if (withMaps) {
    const byMapping = new Map<string, number>();
    let current = "";
    for (const line of (await Bun.file("/proc/self/smaps").text()).split("\n")) {
      const head = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
      if (head) current = head[1] || "[anonymous]";
      const rss = line.match(/^Rss:\s+(\d+)/);
      if (rss) byMapping.set(current, (byMapping.get(current) ?? 0) + Number(rss[1]));
    }
    out.maps = [...byMapping]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([name, size]) => `  ${(size / 1024).toFixed(1).padStart(6)} MB  ${name}`)
      .join("\n");
  }
  return out;
}

const role = process.argv[2];
if (role === "--gateway" || role === "--bare") {
  // An upstream that answers nothing useful: the idle gateway never calls it.
  const upstream = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("idle") });
  if (role === "--gateway") {
    const { serveGateway } = await import("./bench-servers.ts");
    // Its own output (PORT, KEY) goes to stdout; ours goes to stderr.
    await serveGateway(`http://127.0.0.1:${upstream.port}`, 1);
  } else {
    Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => fetch(`http://127.0.0.1:${upstream.port}${new URL(req.url).pathname}`),
    });
  }
  await Bun.sleep(500);
  console.error(`SAMPLE ${JSON.stringify(await sample(process.argv.includes("--maps")))}`);
  // serveGateway removes its data directory on SIGTERM, then exits.
  if (role === "--gateway") process.kill(process.pid, "SIGTERM");
  else process.exit(0);
} else {
  const runsAt = process.argv.indexOf("--runs");
  const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
  const maps = process.argv.includes("--maps");
  const measure = async (which: "--gateway" | "--bare", withMaps: boolean): Promise<Sample> => {
    // As `codex-lb serve` runs (imported here only: the measured child imports nothing up front).
    const { withAllocatorEnv } = await import("../src/runtime/bun/start-env.ts");
    const child = Bun.spawn(["bun", import.meta.path, which, ...(withMaps ? ["--maps"] : [])], {
      env: withAllocatorEnv(process.env),
      stdout: "ignore",
      stderr: "pipe",
    });
    const err = await new Response(child.stderr).text();
    await child.exited;
    const line = err.split("\n").find((l) => l.startsWith("SAMPLE "));
    if (!line) throw new Error(`${which} gave no sample:\n${err}`);
    return JSON.parse(line.slice(7)) as Sample;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows: [string, Sample[]][] = [];
  for (const which of ["--bare", "--gateway"] as const) {
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++)
      samples.push(await measure(which, maps && which === "--gateway" && i === runs - 1));
    rows.push([which === "--bare" ? "bare Bun.serve" : "codex-lb (bench gateway)", samples]);
  }
  console.log(`idle memory after a full GC, median of ${runs} runs (MB)`);
  console.log(
    `${"process".padEnd(26)}${"VmRSS".padStart(8)}${"anon".padStart(8)}${"file".padStart(8)}${"JS heap".padStart(9)}`,
  );
  for (const [name, samples] of rows) {
    const m = (k: "rss" | "anon" | "file" | "heap") => median(samples.map((s) => s[k])).toFixed(1);
    console.log(
      `${name.padEnd(26)}${m("rss").padStart(8)}${m("anon").padStart(8)}${m("file").padStart(8)}${m("heap").padStart(9)}`,
    );
  }
  const withMaps = rows[1]![1].find((s) => s.maps);
  if (withMaps) console.log(`largest mappings of the gateway:\n${withMaps.maps}`);
}
