/**
 * Bun's fetch runs 256 requests at once unless BUN_CONFIG_MAX_HTTP_REQUESTS is set when the process
 * starts; applyFetchLimit re-executes the process in place (same pid) with it set.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";

const child = fileURLToPath(new URL("../fixtures/fetch-limit-child.ts", import.meta.url));
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
  return { ...JSON.parse(out), startedAs: Number(/pid (\d+)/.exec(err)?.[1]) };
}

test("300 requests run at once after applyFetchLimit(1000), in the same process", async () => {
  const r = await runChild({});
  expect(r.outcome).toEqual({ kind: "in-force", limit: 1000 });
  expect(r.pid).toBe(r.startedAs);
  expect(r.peakSeen).toBe(300);
});

test("a BUN_CONFIG_MAX_HTTP_REQUESTS set by the operator wins (here Bun's 256)", async () => {
  const r = await runChild({ BUN_CONFIG_MAX_HTTP_REQUESTS: "256" });
  expect(r.outcome).toEqual({ kind: "operator", limit: "256" });
  expect(r.peakSeen).toBe(256);
});
