/**
 * Access-control hot path benchmark: admission of a keyed proxy request (`admitApiKey`) and the
 * model/limit check (`authorizeProxyRequest`) against a key with four limits and N request logs in
 * its current windows. Prints median and p99 per call. Usage: `bun run scripts/bench-access.ts [N]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { admitApiKey, authorizeProxyRequest } from "../src/access/api-keys/authorize.ts";
import { createApiKey } from "../src/access/api-keys/repository.ts";
import { defaultsFrom, RuntimeSettingsStore } from "../src/runtime-settings/store.ts";
import { loadSettings } from "../src/settings/load.ts";
import { openMigratedStore } from "../src/store/store.ts";

const rows = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), "codex-lb-bench-access-"));
const store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
const now = Date.now();
const created = now - 29 * 24 * 3_600_000;
const { record, key } = await createApiKey(
  store.db,
  {
    name: "bench",
    limits: [
      { limitType: "total_tokens", limitWindow: "5h", maxValue: 1e12 },
      { limitType: "input_tokens", limitWindow: "daily", maxValue: 1e12 },
      { limitType: "output_tokens", limitWindow: "weekly", maxValue: 1e12 },
      { limitType: "cost_usd", limitWindow: "monthly", maxValue: 1e12 },
    ],
  },
  created,
);
const runtimeSettings = new RuntimeSettingsStore(store.db, {
  ...defaultsFrom(loadSettings({})),
  apiKeyAuthEnabled: true,
});
const batch = 5_000;
for (let i = 0; i < rows; i += batch) {
  const values = Array.from({ length: Math.min(batch, rows - i) }, (_, j) => ({
    requested_at: created + Math.floor(((i + j) / rows) * (now - created)),
    request_id: `r${i + j}`,
    api_key_id: record.id,
    model: (i + j) % 2 ? "gpt-5.4" : "gpt-5.4-mini",
    endpoint: "/v1/responses",
    status: "success",
    input_tokens: 1000,
    cached_input_tokens: 200,
    output_tokens: 300,
  }));
  await store.db.insertInto("request_logs").values(values).execute();
}

async function measure(name: string, n: number, fn: () => unknown) {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(3);
  console.log(`${name}: median ${q(0.5)} ms, p99 ${q(0.99)} ms (${n} calls, ${rows} logs)`);
}

const headers = new Headers({ authorization: `Bearer ${key}` });
await measure("admitApiKey", 2000, () =>
  admitApiKey({
    db: store.db,
    runtimeSettings,
    headers,
    path: "/v1/responses",
    local: () => false,
    now: Date.now(),
  }),
);
await measure("authorizeProxyRequest", 200, () =>
  authorizeProxyRequest({ db: store.db, apiKeyId: record.id, model: "gpt-5.4", now: Date.now() }),
);
await store.close();
rmSync(dir, { recursive: true, force: true });
