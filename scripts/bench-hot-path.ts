/**
 * `bun run scripts/bench-hot-path.ts`: the per-request costs of a proxied request, measured
 * in-process against the fake upstream on 127.0.0.1 with the real built-in plugins — the
 * credentials lookup, the cached account list, the account.select and request.completed hooks,
 * and whole streamed requests over HTTP. Prints microseconds per call.
 *
 * @module
 */
import { startProxyEnv } from "../tests/support/proxy-env.ts";

const env = await startProxyEnv({
  accounts: [{ id: "a" }, { id: "b" }, { id: "c" }],
  env: { CODEX_LB_ROUTING_STRATEGY: "capacity_weighted", CODEX_LB_LOG_LEVEL: "info" },
});
const g = env.gw.running.gateway;
const credentials = g.services.provider("credentials");

async function time(name: string, n: number, fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 50; i++) await fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  console.log(`${name.padEnd(32)} ${(((performance.now() - t) / n) * 1000).toFixed(1).padStart(8)} µs`);
}

try {
  await time("credentials.get", 2000, () => credentials.get("a"));
  await time("services.accounts.list", 2000, () => g.services.accounts.list());
  const all = await g.services.accounts.list();
  await time("fire account.select", 2000, () =>
    g.services.fire("account.select", {
      requestId: "r",
      model: "gpt-5.2",
      candidates: all,
      all,
      excluded: [],
      headers: new Headers(),
      body: {},
      now: Date.now(),
      random: Math.random,
    }),
  );
  await time("fire request.completed", 2000, () =>
    g.services.fire("request.completed", {
      requestId: "r",
      account: all[0]!,
      ok: true,
      httpStatus: 200,
      now: Date.now(),
    }),
  );
  const body = JSON.stringify({ model: "gpt-5.2", input: "hi", stream: true });
  await time("HTTP /v1/responses (stream)", 500, async () => {
    const r = await fetch(`${env.gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await r.text();
  });
  await time("HTTP /health", 2000, async () => {
    await (await fetch(`${env.gw.url}/health`)).text();
  });
} finally {
  await env.stop();
}
