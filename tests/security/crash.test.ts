/**
 * A crash under load: the real `codex-lb serve` (a child process, its SQLite file in a temporary
 * data dir) with API-key auth on and a key with a limit, loaded by the openai SDK through the fake
 * upstream, is killed with `kill -9` mid-load and started again on the same data dir. Then:
 * `PRAGMA integrity_check` is ok; no account, key or admin password is lost; request-log rows are
 * lost only for requests that finished within about one flush interval of the kill; and the key's
 * usage is not under-counted — the requests whose log rows died with the process still count (their
 * reservations are rows), and so do the ones that were in flight.
 */
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { fakeAuth } from "../fakes/auth.ts";
import { fakeCodex } from "../fakes/codex.ts";
import { startFakeServer } from "../fakes/server.ts";
import { fakeUsage } from "../fakes/usage.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import { adminLogin, jsonInit, TEST_ADMIN_PASSWORD } from "../support/admin.ts";
import type { TestGateway } from "../support/gateway.ts";
import { type Child, spawnServe } from "../support/process.ts";

const FLUSH_MS = 1000;
const WORKERS = 16;
/** How long the load runs before the kill: several flush intervals. */
const LOAD_MS = 3 * FLUSH_MS;

const fake = fakeCodex({ kind: "slow", text: "Hello from the fake Codex backend.", delayMs: 120 });
const auth = fakeAuth();
const usage = fakeUsage();
const upstream = startFakeServer({ ...auth.routes, ...usage.routes, ...fake.routes });
const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-crash-"));
const env: Record<string, string> = {
  CODEX_LB_DATA_DIR: dataDir,
  CODEX_LB_HOST: "127.0.0.1",
  CODEX_LB_UPSTREAM_BASE_URL: `${upstream.url}/backend-api`,
  CODEX_LB_AUTH_BASE_URL: upstream.url,
  CODEX_LB_OAUTH_CALLBACK_PORT: "0",
  CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
  CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "3600",
  CODEX_LB_REQUEST_LOG_FLUSH_MS: String(FLUSH_MS),
  CODEX_LB_LOG_LEVEL: "info",
};
const children: Child[] = [];

afterAll(async () => {
  for (const c of children) c.proc.kill("SIGKILL");
  await Promise.all(children.map((c) => c.proc.exited));
  await upstream.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

async function start(): Promise<{ url: string; child: Child }> {
  const child = await spawnServe(env, dataDir, 30_000);
  children.push(child);
  return { url: `http://127.0.0.1:${child.port}`, child };
}

interface Done {
  readonly requestId: string;
  readonly totalTokens: number;
  /** performance.now() when the SDK had the whole answer. */
  readonly at: number;
}

interface KeyView {
  id: string;
  name: string;
  limits: { limitType: string; limitWindow: string; maxValue: number; currentValue: number }[];
}

test("kill -9 under keyed load, restart on the same data dir: nothing durable lost, usage not under-counted", async () => {
  const first = await start();
  const gw = { url: first.url } as TestGateway;
  const cookie = await adminLogin(gw);
  const accountIds: string[] = [];
  for (const who of [identity("crash"), identity("crash")]) {
    const res = await fetch(
      `${first.url}/api/accounts/import`,
      jsonInit("POST", authJsonOf(auth.issue(who, { expiresInSeconds: 3600 })), cookie),
    );
    expect(res.status).toBe(200);
    accountIds.push(((await res.json()) as { accountId: string }).accountId);
  }
  const created = await fetch(
    `${first.url}/api/api-keys`,
    jsonInit(
      "POST",
      {
        name: "crash-load",
        limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 100_000_000 }],
      },
      cookie,
    ),
  );
  expect(created.status).toBe(201);
  const { key, id: keyId } = (await created.json()) as { key: string; id: string };
  const access = await fetch(
    `${first.url}/api/settings/access`,
    jsonInit("PUT", { apiKeyAuthEnabled: true }, cookie),
  );
  expect(access.status).toBe(200);

  // The load: WORKERS clients in a loop until the process dies under them.
  const client = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: key, maxRetries: 0, timeout: 20_000 });
  const done: Done[] = [];
  let stop = false;
  let inFlight = 0;
  const worker = async () => {
    while (!stop) {
      inFlight++;
      try {
        const { data, response } = await client.responses
          .create({ model: "gpt-5.4", input: "hi", max_output_tokens: 64 })
          .withResponse();
        if (!stop) {
          expect(data.output_text).toContain("Hello");
          done.push({
            requestId: response.headers.get("x-request-id") ?? "",
            totalTokens: data.usage?.total_tokens ?? 0,
            at: performance.now(),
          });
        }
      } catch (e) {
        // After the kill: connection errors are expected. Before it, nothing may fail.
        if (!stop) throw e;
      } finally {
        inFlight--;
      }
    }
  };
  const loadStart = performance.now();
  const workers = Array.from({ length: WORKERS }, () => worker());
  while (performance.now() - loadStart < LOAD_MS || done.length < 50) await Bun.sleep(10);
  while (inFlight === 0) await Bun.sleep(1);
  first.child.proc.kill(9);
  const killedAt = performance.now();
  stop = true;
  await first.child.proc.exited;
  await Promise.all(workers);
  const served = done.filter((d) => d.at < killedAt);
  expect(served.every((d) => d.requestId !== "" && d.totalTokens > 0)).toBe(true);

  // The file the dead process left: intact, with in-flight reservations still in it.
  const db = new Database(join(dataDir, "store.db"));
  const integrity = db.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
  expect(integrity).toEqual([{ integrity_check: "ok" }]);
  const logged = new Set(
    (
      db.query("SELECT request_id FROM request_logs WHERE api_key_id = ?").all(keyId) as {
        request_id: string;
      }[]
    ).map((r) => r.request_id),
  );
  const loggedDbTokens = (
    db
      .query(
        "SELECT coalesce(sum(input_tokens + output_tokens), 0) AS n FROM request_logs WHERE api_key_id = ?",
      )
      .get(keyId) as { n: number }
  ).n;
  const reservations = db
    .query("SELECT request_id, settled FROM api_key_reservations WHERE api_key_id = ?")
    .all(keyId) as { request_id: string; settled: number }[];
  db.close();

  // Request-log loss: only requests that finished within one flush interval of the kill (plus as
  // much again for the write itself on a busy machine); the ones before that are all logged.
  const lost = served.filter((d) => !logged.has(d.requestId));
  const oldestLostMs = lost.length === 0 ? 0 : Math.round(killedAt - Math.min(...lost.map((d) => d.at)));
  console.log(
    `crash: ${served.length} served before kill -9, ${lost.length} log rows lost (oldest finished ${oldestLostMs} ms before the kill), ${reservations.filter((r) => r.settled === 0).length} unsettled + ${reservations.filter((r) => r.settled === 1).length} settled reservations left`,
  );
  const older = served.filter((d) => killedAt - d.at >= 2 * FLUSH_MS);
  expect(older.length).toBeGreaterThan(0);
  for (const d of older) expect(logged.has(d.requestId)).toBe(true);
  // The requests in flight at the kill left their reservations (estimates) behind.
  expect(reservations.filter((r) => r.settled === 0).length).toBeGreaterThan(0);
  // Every served request whose row was lost still has its (settled) reservation.
  const reserved = new Set(reservations.filter((r) => r.settled === 1).map((r) => r.request_id));
  for (const d of lost) expect(reserved.has(d.requestId)).toBe(true);

  // The restart, on the same data dir.
  const second = await start();
  const gw2 = { url: second.url } as TestGateway;
  // The admin password survived (the login would set a new one if it had not).
  const state = (await (await fetch(`${second.url}/api/auth/session`)).json()) as { passwordSet: boolean };
  expect(state.passwordSet).toBe(true);
  const cookie2 = await adminLogin(gw2, { password: TEST_ADMIN_PASSWORD });
  // Every account and the key are there.
  const { accounts } = (await (
    await fetch(`${second.url}/api/accounts`, jsonInit("GET", undefined, cookie2))
  ).json()) as { accounts: { id: string }[] };
  expect(accounts.map((a) => a.id).sort()).toEqual([...accountIds].sort());
  const keys = (await (
    await fetch(`${second.url}/api/api-keys`, jsonInit("GET", undefined, cookie2))
  ).json()) as KeyView[];
  expect(keys.map((k) => k.id)).toEqual([keyId]);
  const settings = (await (
    await fetch(`${second.url}/api/settings/access`, jsonInit("GET", undefined, cookie2))
  ).json()) as { apiKeyAuthEnabled: boolean };
  expect(settings.apiKeyAuthEnabled).toBe(true);

  // Usage is not under-counted: at least every token the clients were served, and the requests in
  // flight at the kill count their estimates on top.
  const servedTokens = served.reduce((n, d) => n + d.totalTokens, 0);
  const current = keys[0]!.limits[0]!.currentValue;
  console.log(`crash: key usage after restart ${current} tokens, served before the kill ${servedTokens}`);
  expect(current).toBeGreaterThanOrEqual(servedTokens);
  const own = (await (
    await fetch(`${second.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })
  ).json()) as { limits: { current_value: number }[] };
  expect(own.limits[0]!.current_value).toBe(current);

  // Enforcement counts them too: a limit just above the logged usage alone is already reached.
  const patched = await fetch(
    `${second.url}/api/api-keys/${keyId}`,
    jsonInit(
      "PATCH",
      { limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: loggedDbTokens + 1 }] },
      cookie2,
    ),
  );
  expect(patched.status).toBe(200);
  const again = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: key, maxRetries: 0 });
  const refused = await again.responses.create({ model: "gpt-5.4", input: "hi" }).then(
    () => null,
    (e: unknown) => e as { status?: number; code?: string },
  );
  expect(refused?.status).toBe(429);
  expect(refused?.code).toBe("rate_limit_exceeded");
}, 120_000);
