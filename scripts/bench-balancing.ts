/**
 * Balancer speed: the pure choice over a pool, and a whole `account.select` through a gateway's
 * dispatcher with a real SQLite store (sticky lookup/bind included).
 * Run: `bun run scripts/bench-balancing.ts`. Prints per-call times; asserts nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chooseAccount } from "../plugins/balancing/strategies.ts";
import type { AccountSnapshot } from "../src/core/types.ts";
import {
  account,
  candidatesOf,
  DAY,
  insertAccount,
  insertUsage,
  seeded,
  weekly,
} from "../tests/balancing/fixtures.ts";
import { startGateway } from "../tests/support/gateway.ts";

function time(label: string, n: number, fn: () => unknown): void {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  const us = ((performance.now() - t0) * 1000) / n;
  console.log(`${label.padEnd(48)} ${us.toFixed(2)} µs/call`);
}

for (const size of [3, 50, 500]) {
  const pool: AccountSnapshot[] = Array.from({ length: size }, (_, i) =>
    account(`a${i}`, { secondary: weekly((i * 37) % 100, Date.now(), ((i % 7) + 0.5) * DAY) }),
  );
  const random = seeded(1);
  const last = new Map<string, number>();
  for (const strategy of ["capacity_weighted", "usage_weighted", "round_robin", "fill_first"] as const) {
    time(`chooseAccount ${strategy} (${size} accounts)`, 20_000, () =>
      chooseAccount(pool, { strategy, now: Date.now(), random, lastSelected: last }),
    );
  }
}

const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-bench-"));
const gw = await startGateway({ dataDir, env: { CODEX_LB_LOG_LEVEL: "warn" } });
try {
  const services = gw.running.gateway.services;
  for (let i = 0; i < 20; i++) {
    await insertAccount(gw.running.store.db, `acc${i}`);
    await insertUsage(gw.running.store.db, `acc${i}`, "secondary", weekly(i * 4, Date.now(), 3 * DAY));
  }
  let all = await services.accounts.list();
  const fire = async (headers: Record<string, string>) => {
    const now = Date.now();
    // As the proxy does: the snapshot cache's list (the same array until an account changes).
    all = await services.accounts.list();
    return services.fire("account.select", {
      requestId: "bench",
      model: null,
      candidates: candidatesOf(all, now),
      all,
      excluded: [],
      headers: new Headers(headers),
      body: {},
      now,
      random: Math.random,
    });
  };
  for (const [label, headers] of [
    ["account.select, no affinity key (20 accounts)", () => ({})],
    ["account.select, same session key (20 accounts)", () => ({ "session-id": "s" })],
    ["account.select, new session key each (20 accounts)", () => ({ "session-id": crypto.randomUUID() })],
  ] as const) {
    const n = 2000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fire(headers());
    console.log(`${label.padEnd(48)} ${(((performance.now() - t0) * 1000) / n).toFixed(1)} µs/call`);
  }
  // 200 accounts: without usage (every weight fixed: the precomputed running totals), then with
  // usage whose pace boosts follow the clock (weights computed per request from prepared windows).
  for (let i = 20; i < 200; i++) await insertAccount(gw.running.store.db, `acc${i}`);
  for (const withUsage of [false, true]) {
    if (withUsage) {
      for (let i = 20; i < 200; i++)
        await insertUsage(gw.running.store.db, `acc${i}`, "secondary", weekly(i % 90, Date.now(), 2 * DAY));
    }
    await Bun.sleep(1100); // the snapshot cache's TTL: the next list has the new rows
    const label = `account.select, no affinity key (200 accounts${withUsage ? ", boosts" : ""})`;
    const n = 5000;
    await fire({});
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fire({});
    console.log(`${label.padEnd(48)} ${(((performance.now() - t0) * 1000) / n).toFixed(1)} µs/call`);
  }
} finally {
  await gw.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
