/**
 * Unit tests run on a fake clock: no real wait above 100 ms and no assertion on elapsed real time.
 * A grep-level check over `tests/`: a literal wait over 100 ms (`Bun.sleep(250)`, `setTimeout(f,
 * 3000)`) or a measurement of elapsed real time (`Date.now() - t0`, `performance.now() - start`) is
 * refused outside the integration tests listed below, each with why it needs real time. Code whose
 * waits run on the gateway's clock is tested by moving a `FakeClock` (`startProxyEnv({ clock })`,
 * `startAccountsWorld({ clock })`); what cannot be is what real sockets, real processes or a real
 * browser time by themselves.
 *
 * Not caught here: a wait whose length is a variable, or a gateway setting that makes the code
 * wait on the real clock (the list only covers what a grep can see).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Glob } from "bun";

const root = resolve(import.meta.dir, "../..");

/** Files allowed real time, and why. This list only shrinks. */
const INTEGRATION: Record<string, string> = {
  "tests/cli/cli.test.ts":
    "real `codex-lb` processes: signals, graceful stop of an in-flight request, restart",
  "tests/fixtures/plugins/slow-route.ts":
    "a plugin loaded by the real-process CLI test: a request still running when SIGTERM arrives",
  "tests/plugin-host/declared.test.ts": "a real `codex-lb` process, killed if it hangs (a cap, not a wait)",
  "tests/proxy/codex-cli.test.ts": "the real Codex CLI process, killed if it hangs (a cap, not a wait)",
  "tests/proxy/codex-cli-websocket.test.ts":
    "the real Codex CLI process, killed if it hangs (a cap, not a wait)",
  "tests/runtime/start-env.test.ts":
    "Bun's own fetch connection limit (BUN_CONFIG_MAX_HTTP_REQUESTS) in a real process",
  "tests/scale/limits.test.ts": "real replicas on PostgreSQL: a lease outlives a kill -9 on the real clock",
  "tests/scale/scale.test.ts": "real replicas on PostgreSQL under load: kill -9, lease expiry, refresh",
  "tests/scale/streams.test.ts": "real replicas: stream leases of a killed replica expire on the real clock",
  "tests/security/bad-input.test.ts":
    "raw sockets: a read bounded by 3 s that ends when the server closes (a cap, not a wait)",
  "tests/security/crash.test.ts": "kill -9 of a real process under load, then a restart",
  "tests/security/slow-body.test.ts":
    "raw sockets trickling bodies: Bun's socket timers and the body deadline of a real server",
  "tests/security/slow-headers.test.ts":
    "raw sockets trickling headers: the header deadline, the per-address cap of connections still sending them, and the idle timeout",
  "tests/dashboard/admin-api.test.ts":
    "a real server's graceful stop (Bun's server, src/runtime/bun/serve.ts): it ends the event streams instead of waiting out a 20 s grace",
  "tests/dashboard/first-run.test.ts":
    "a real browser (playwright): the Requests page shows a new request within 2 s",
};

const WAIT =
  /(?<![.\w#])(?:Bun\.sleep|sleep)\(\s*([0-9][0-9_]*)\s*\)|(?<![.\w#])set(?:Timeout|Interval)\(.*,\s*([0-9][0-9_]*)\s*\)/;
const ELAPSED = /\b(?:Date|performance)\.now\(\)\s*-\s*[A-Za-z_$]/;

describe("unit tests take no real time", () => {
  test("real waits over 100 ms and elapsed-time measurements only in the listed integration tests", () => {
    const hits: string[] = [];
    const used = new Set<string>();
    let files = 0;
    for (const file of new Glob("tests/**/*.{ts,tsx}").scanSync({ cwd: root })) {
      if (file === "tests/core/real-time.test.ts") continue;
      files++;
      readFileSync(resolve(root, file), "utf8")
        .split("\n")
        .forEach((line, i) => {
          const code = line.trim();
          if (code.startsWith("*") || code.startsWith("//")) return;
          const w = WAIT.exec(code);
          const ms = w ? Number((w[1] ?? w[2])!.replace(/_/g, "")) : 0;
          if (ms <= 100 && !ELAPSED.test(code)) return;
          if (file in INTEGRATION) used.add(file);
          else hits.push(`${file}:${i + 1}: ${code}`);
        });
    }
    expect(files).toBeGreaterThan(100);
    expect(hits).toEqual([]);
    // An entry nothing needs any more is removed.
    expect(Object.keys(INTEGRATION).filter((f) => !used.has(f))).toEqual([]);
  });

  test("the check sees what it should", () => {
    const sees = (code: string) => {
      const w = WAIT.exec(code);
      return (w ? Number((w[1] ?? w[2])!.replace(/_/g, "")) : 0) > 100 || ELAPSED.test(code);
    };
    expect(sees("await Bun.sleep(250);")).toBe(true);
    expect(sees("await sleep(6_000);")).toBe(true);
    expect(sees("setTimeout(resolve, 3000);")).toBe(true);
    expect(sees("const t = setInterval(() => tick(), 500);")).toBe(true);
    expect(sees("expect(Date.now() - t0).toBeGreaterThanOrEqual(250);")).toBe(true);
    expect(sees("const waited = performance.now() - t0;")).toBe(true);
    // Short waits, fake-clock timers, moving a fake clock and dates in the past are fine.
    expect(sees("await Bun.sleep(20);")).toBe(false);
    expect(sees("clock.setTimeout(() => fired.push(1), 200);")).toBe(false);
    expect(sees("await clock.advance(60_000);")).toBe(false);
    expect(sees("expiresAt: Date.now() - 1000,")).toBe(false);
    expect(sees("new Date(Date.now() - 9 * 86_400_000)")).toBe(false);
  });
});
