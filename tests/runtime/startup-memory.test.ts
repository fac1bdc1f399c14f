/**
 * Before it listens, a gateway booted as users run it drops the code compiled during start-up (idle
 * memory, issue 15; src/runtime/bun/startup-memory.ts), and still serves: its functions are compiled
 * again on their next call. The drop blocks the process for tens of milliseconds, so it is over by
 * the time `boot` returns (the gateway listens): no request waits for it. A fresh process (the test
 * runner's own keeps its code) boots the real gateway and counts the engine's compiled-code cells
 * right after `boot` returns and again once the engine was idle; the test suite's gateways pass
 * `shedStartupCode: false`, which keeps them.
 */
import { expect, test } from "bun:test";
import { inFreshGateway } from "../support/fresh-gateway.ts";

interface Result {
  before: number;
  after: number;
  health: number;
  body: unknown;
  docs: number;
  title: string;
}

const run = (inject: string) =>
  inFreshGateway<Result>({
    // Loaded before the gateway: a dynamic import after `boot` would let the engine go idle first.
    setup: 'const { heapStats } = await import("bun:jsc");',
    inject,
    body: `
const code = () => {
  const t = heapStats().objectTypeCounts;
  return (t.FunctionCodeBlock ?? 0) + (t.UnlinkedFunctionCodeBlock ?? 0);
};
Bun.gc(true);
const before = code();
await Bun.sleep(100);
Bun.gc(true);
const after = code();
const base = "http://127.0.0.1:" + running.listening.port;
const health = await fetch(base + "/health");
const docs = await fetch(base + "/docs/json");
const doc = await docs.json();
await running.shutdown();
console.log("RESULT " + JSON.stringify({ before, after, health: health.status, body: await health.json(), docs: docs.status, title: doc.info.title }));
`,
  });

test("a gateway booted as users run it has dropped start-up's compiled code when it listens, and still serves", async () => {
  const [shed, kept] = await Promise.all([run("{}"), run("{ shedStartupCode: false }")]);
  // Thousands of functions were compiled during start-up, and a gateway that keeps them still has them.
  expect(kept.before).toBeGreaterThan(1000);
  expect(kept.after).toBeGreaterThan(kept.before / 2);
  // Dropped already when `boot` returned: only the few run since (listening, the log line) are there,
  // and no drop is left to come once the gateway listens.
  expect(shed.before).toBeLessThan(kept.before / 4);
  expect(shed.after).toBeGreaterThan(shed.before / 2);
  for (const r of [shed, kept]) {
    expect(r.health).toBe(200);
    expect(r.body).toEqual({ status: "ok" });
    expect(r.docs).toBe(200);
    expect(r.title).toBe("codex-lb");
  }
});
