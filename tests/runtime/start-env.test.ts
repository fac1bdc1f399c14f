/**
 * Bun's fetch runs 256 requests at once unless BUN_CONFIG_MAX_HTTP_REQUESTS is set when the process
 * starts, and its allocator reads MIMALLOC_PURGE_DELAY only then; applyStartEnv re-executes the
 * process in place (same pid) with what is missing set. An operator's value wins.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";

const child = fileURLToPath(new URL("../fixtures/start-env-child.ts", import.meta.url));
let server: ReturnType<typeof Bun.serve>;
let open = 0;
let release: (() => void) | null = null;
let gate = new Promise<void>((r) => {
  release = r;
});
beforeAll(() => {
  // Holds every request until `wanted` are open at once (or 3 s pass), then answers each with the peak.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch() {
      open++;
      const peak = open;
      if (open >= 300) release?.();
      await Promise.race([gate, Bun.sleep(3000)]);
      open--;
      return new Response(String(Math.max(peak, open + 1)));
    },
  });
});
afterAll(() => server.stop(true));

async function runChild(env: Record<string, string>) {
  open = 0;
  gate = new Promise<void>((r) => {
    release = r;
  });
  const proc = Bun.spawn([process.execPath, child, `http://127.0.0.1:${server.port}/`, "300", "1000"], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect(await proc.exited).toBe(0);
  return { ...JSON.parse(out), startedAs: Number(/pid (\d+)/.exec(err)?.[1]), stderr: err };
}

test("300 requests run at once after applyStartEnv(1000), in the same process, the allocator told to keep freed memory", async () => {
  const r = await runChild({});
  expect(r.outcome).toEqual({
    fetchLimit: { kind: "in-force", value: "1000" },
    allocator: { kind: "in-force", value: "-1" },
  });
  expect(r.pid).toBe(r.startedAs);
  expect(r.peakSeen).toBe(300);
  expect(r.purgeDelay).toBe("-1");
});

test("a BUN_CONFIG_MAX_HTTP_REQUESTS set by the operator wins (here Bun's 256); the allocator's is still added", async () => {
  const r = await runChild({ BUN_CONFIG_MAX_HTTP_REQUESTS: "256" });
  expect(r.outcome).toEqual({
    fetchLimit: { kind: "operator", value: "256" },
    allocator: { kind: "in-force", value: "-1" },
  });
  expect(r.pid).toBe(r.startedAs);
  expect(r.peakSeen).toBe(256);
});

test("a MIMALLOC_PURGE_DELAY set by the operator wins", async () => {
  const r = await runChild({ MIMALLOC_PURGE_DELAY: "100" });
  expect(r.outcome.allocator).toEqual({ kind: "operator", value: "100" });
  expect(r.purgeDelay).toBe("100");
  expect(r.peakSeen).toBe(300);
});

test("nothing to add: no re-execution, and the allocator itself runs with the setting it was given", async () => {
  // mimalloc prints its options at start when MIMALLOC_VERBOSE is set: once here, since nothing is missing.
  const r = await runChild({
    BUN_CONFIG_MAX_HTTP_REQUESTS: "1000",
    MIMALLOC_PURGE_DELAY: "-1",
    MIMALLOC_VERBOSE: "1",
  });
  expect(r.outcome).toEqual({
    fetchLimit: { kind: "in-force", value: "1000" },
    allocator: { kind: "in-force", value: "-1" },
  });
  expect(r.stderr.match(/option 'purge_delay': -1/g)).toHaveLength(1);
  // And re-executed: the first start prints the default, the second the setting.
  const again = await runChild({ MIMALLOC_VERBOSE: "1" });
  expect(again.pid).toBe(again.startedAs);
  expect(again.stderr).toMatch(/option 'purge_delay': 100[\s\S]*option 'purge_delay': -1/);
});
