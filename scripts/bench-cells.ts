/**
 * `bun scripts/bench-cells.ts <checkout> [<checkout> …]`: JS cells (objects, closures, scopes,
 * promises, async frames, strings…) each checkout's bench gateway (`scripts/bench.ts gateway`: key
 * auth with a limit, request logs, metrics) allocates per short-answer request, by type, 127.0.0.1
 * only. Where `scripts/bench-alloc.ts` reads bytes from the collector's log (its rounds spread by
 * ±10 %), this counts cells exactly: the gateway runs with `scripts/bench-cells-snapshot.ts`
 * preloaded, and between two of its snapshots with no collection between them the difference is
 * what `CELLS_REQUESTS` (default 100) requests allocated; windows a collection fell into are
 * dropped. Each checkout gets `CELLS_WINDOWS` (default 8) windows after 3,000 warm-up requests, at
 * `CELLS_CONNS` (default 4) connections, in front of the first checkout's fake upstream. Prints
 * cells per request (the clean window of median total) by type, and each later checkout's
 * difference from the first by type. Windows still differ by a few percent (the log flush, the
 * group commit and timers fall into them unevenly), far less than bytes or CPU: compare medians
 * over several windows, and cuts of a few cells per request by type. `CELLS_KEY=1` adds a
 * `prompt_cache_key` to the body (one key for every request, as one Codex CLI conversation sends
 * it), so each request goes through the sticky binding's lookup and touch.
 *
 * @module
 */
import { resolve } from "node:path";
import { envNumber } from "./bench-env.ts";
import {
  checkoutArgs,
  type Listening,
  requestsOver,
  spawnCheckoutRole,
  spawnListening,
  table,
} from "./bench-proc.ts";
import { SHORT_BODY } from "./bench-servers.ts";

const roots = checkoutArgs("bun scripts/bench-cells.ts <checkout> [<checkout> …]");
const REQUESTS = envNumber("CELLS_REQUESTS", 100);
const WINDOWS = envNumber("CELLS_WINDOWS", 8);
const CONNS = envNumber("CELLS_CONNS", 4);
/** This checkout's snapshot module, whichever checkout's gateway is measured. */
const SNAPSHOT = resolve(import.meta.dir, "bench-cells-snapshot.ts");

interface Snapshot {
  readonly collected: boolean;
  readonly counts: Record<string, number>;
}

const BODY =
  process.env.CELLS_KEY === "1"
    ? JSON.stringify({ ...(JSON.parse(SHORT_BODY) as object), prompt_cache_key: "bench-cells-conversation" })
    : SHORT_BODY;

/** `n` short-answer requests over `CONNS` connections. */
const run = (g: Listening, n: number) => requestsOver(g, BODY, n, CONNS);

/** The gateway's snapshots, as its stderr gives them. */
async function* snapshots(stderr: ReadableStream<Uint8Array>): AsyncGenerator<Snapshot> {
  const decoder = new TextDecoder();
  let buf = "";
  const reader = stderr.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith("CELLS ")) yield JSON.parse(line.slice(6)) as Snapshot;
      nl = buf.indexOf("\n");
    }
  }
}

/** Cells per request by type in each clean window of one checkout's gateway. */
async function measure(root: string, upstreamUrl: string): Promise<Record<string, number>[]> {
  const g = await spawnListening(
    ["bun", "--preload", SNAPSHOT, `${root}/scripts/bench.ts`, "gateway", upstreamUrl, "1"],
    {
      stderr: "pipe",
    },
  );
  const snaps = snapshots(g.proc.stderr as ReadableStream<Uint8Array>);
  const snapshot = async () => {
    g.proc.kill("SIGUSR2");
    const next = await snaps.next();
    if (next.done) throw new Error("the gateway stopped before its snapshot");
    return next.value;
  };
  try {
    await run(g, 3000);
    const windows: Record<string, number>[] = [];
    for (let w = 0; w < WINDOWS; w++) {
      const before = await snapshot();
      await run(g, REQUESTS);
      const after = await snapshot();
      if (after.collected) continue;
      const perRequest: Record<string, number> = {};
      for (const [type, n] of Object.entries(after.counts))
        perRequest[type] = (n - (before.counts[type] ?? 0)) / REQUESTS;
      windows.push(perRequest);
    }
    if (windows.length === 0) throw new Error(`${root}: a collection fell into every window`);
    return windows;
  } finally {
    await g.kill();
  }
}

const total = (w: Record<string, number>) => Object.values(w).reduce((s, n) => s + n, 0);
/** The window of median total (its types stay together). */
const median = (ws: Record<string, number>[]) =>
  [...ws].sort((a, b) => total(a) - total(b))[(ws.length - 1) >> 1]!;

const upstream = await spawnCheckoutRole(roots[0]!, ["upstream"]);
const results: Record<string, number>[] = [];
try {
  for (const root of roots) {
    const ws = await measure(root, upstream.url);
    const m = median(ws);
    results.push(m);
    const types = Object.entries(m)
      .filter(([, n]) => Math.abs(n) >= 0.5)
      .sort((a, b) => b[1] - a[1]);
    console.log(
      `${root}: ${total(m).toFixed(1)} cells/request (clean windows: ${ws.map((w) => total(w).toFixed(0)).join(", ")})`,
    );
    console.log(`  ${types.map(([t, n]) => `${t} ${n.toFixed(1)}`).join(", ")}`);
  }
} finally {
  await upstream.kill();
}
if (roots.length > 1) {
  const types = [...new Set(results.flatMap((r) => Object.keys(r)))].filter((t) =>
    results.some((r) => Math.abs((r[t] ?? 0) - (results[0]![t] ?? 0)) >= 0.5),
  );
  console.log(
    `\nCells per request, short answer at c${CONNS}, ${REQUESTS} requests per window: difference from the first checkout`,
  );
  console.log(
    table([
      ["checkout", "total", ...types],
      ...roots
        .slice(1)
        .map((root, i) => [
          root,
          (total(results[i + 1]!) - total(results[0]!)).toFixed(1),
          ...types.map((t) => ((results[i + 1]![t] ?? 0) - (results[0]![t] ?? 0)).toFixed(1)),
        ]),
    ]),
  );
}
