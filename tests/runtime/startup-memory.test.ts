/**
 * Once listening, a gateway booted as users run it drops the code compiled during start-up (idle
 * memory, issue 15; src/runtime/bun/startup-memory.ts), and still serves: its functions are compiled
 * again on their next call. A fresh process (the test runner's own keeps its code) boots the real
 * gateway and counts the engine's compiled-code cells right after `boot` returns and again once the
 * engine was idle; the test suite's gateways pass `shedStartupCode: false`, which keeps them.
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

test("a gateway booted as users run it drops start-up's compiled code once listening, and still serves", async () => {
  const r = await run("{}");
  // Thousands of functions were compiled during start-up; after the drop only the few run since are.
  expect(r.before).toBeGreaterThan(1000);
  expect(r.after).toBeLessThan(r.before / 4);
  expect(r.health).toBe(200);
  expect(r.body).toEqual({ status: "ok" });
  expect(r.docs).toBe(200);
  expect(r.title).toBe("codex-lb");
});

test("with shedStartupCode: false (the test suite's gateways) the compiled code stays", async () => {
  const r = await run("{ shedStartupCode: false }");
  expect(r.before).toBeGreaterThan(1000);
  expect(r.after).toBeGreaterThan(r.before / 2);
  expect(r.health).toBe(200);
  expect(r.docs).toBe(200);
});
