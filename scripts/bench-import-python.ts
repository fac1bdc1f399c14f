/**
 * How long `codex-lb import-python` takes on a large Python codex-lb install (200 accounts, 500 API
 * keys with limits, 20 000 sticky sessions, 100 000 request logs), with and without
 * `--with-history`. Builds the install with the test fixture (tests/import-python), imports it into
 * fresh data dirs with the real command, prints the times and summaries, and deletes everything.
 *
 * Run: bun run scripts/bench-import-python.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeAuth } from "../tests/fakes/auth.ts";
import { type PythonStoreSpec, writePythonDataDir } from "../tests/import-python/python-fixture.ts";
import { pyApiKey } from "../tests/import-python/scenario.ts";

const dir = mkdtempSync(join(tmpdir(), "i16-bench-"));
const auth = fakeAuth();
const now = Date.now();
const N_ACC = 200,
  N_KEYS = 500,
  N_STICKY = 20000,
  N_LOGS = 100000;
const accounts = Array.from({ length: N_ACC }, (_, i) => {
  const ident = {
    email: `u${i}@x.example`,
    chatgptAccountId: `acct-${i}`,
    chatgptUserId: `user-${i}`,
    planType: "plus",
  };
  return { id: `py${i}`, ...ident, tokens: auth.issue(ident) };
});
const spec: PythonStoreSpec = {
  accounts,
  apiKeys: Array.from({ length: N_KEYS }, (_, i) => ({
    id: `k${i}`,
    name: `key ${i}`,
    key: pyApiKey(),
    createdAtMs: now - 86_400_000,
    limits: [{ type: "total_tokens", window: "daily", max: 1e6 }],
  })),
  firewall: ["127.0.0.1"],
  sticky: Array.from({ length: N_STICKY }, (_, i) => ({
    key: `s${i}`,
    kind: "prompt_cache",
    accountId: `py${i % N_ACC}`,
    updatedAtMs: now - 1000,
  })),
  settings: {
    routingStrategy: "round_robin",
    stickyTtlSeconds: 3600,
    apiKeyAuthEnabled: true,
    password: "pw",
    totpSecret: null,
  },
  requestLogs: N_LOGS,
};
let t = performance.now();
await writePythonDataDir(join(dir, "py"), spec);
console.log(`fixture written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
for (const args of [[], ["--with-history"]]) {
  t = performance.now();
  const r = Bun.spawnSync(
    [
      process.execPath,
      join(import.meta.dir, "../src/cli/main.ts"),
      "import-python",
      join(dir, "py"),
      ...args,
    ],
    {
      env: {
        ...process.env,
        CODEX_LB_DATA_DIR: join(dir, `ours${args.length}`),
        CODEX_LB_LOG_LEVEL: "silent",
      },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  console.log(
    `import-python ${args.join(" ")}: exit ${r.exitCode} in ${((performance.now() - t) / 1000).toFixed(2)} s`,
  );
  console.log(r.stdout.toString().split("\n").slice(0, 9).join("\n"));
}
rmSync(dir, { recursive: true, force: true });
