/**
 * The larger fuzz run: `bun run scripts/fuzz.ts [runsPerOperation=200] [seed]`. Starts a gateway on
 * 127.0.0.1 with a temporary store and walks every `/docs/json` operation (tests/fuzz/walk.ts).
 * Exit 1 when any answer is a 5xx or not a JSON error envelope.
 */

import { fuzzAll } from "../tests/fuzz/walk.ts";
import { startGateway } from "../tests/support/gateway.ts";

const runs = Number(process.argv[2] ?? 200);
const seed = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const gw = await startGateway({ env: { CODEX_LB_OAUTH_CALLBACK_PORT: "0", CODEX_LB_LOG_LEVEL: "warn" } });
const t0 = performance.now();
try {
  const { operations, requests, problems } = await fuzzAll(gw, runs, seed);
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`${operations} operations, ${requests} requests in ${s} s, ${problems.length} problems`);
  for (const p of problems.slice(0, 50)) console.log(p);
  process.exitCode = problems.length > 0 ? 1 : 0;
} finally {
  await gw.stop();
}
