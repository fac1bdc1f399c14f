/**
 * Several gateway processes (`codex-lb serve`, the source entry or `CODEX_LB_BIN`) on one
 * PostgreSQL database of the test server, behind no load balancer: tests pick the replica. One
 * fake upstream serves them all (Codex backend, `/wham/usage`, OAuth token endpoint). Every replica
 * has its own data dir holding the same encryption key, as docs/deploy.md tells operators to do.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FakeAuth, fakeAuth } from "../fakes/auth.ts";
import { type FakeCodex, fakeCodex } from "../fakes/codex.ts";
import { type FakeServer, startFakeServer } from "../fakes/server.ts";
import { type FakeUsageState, fakeUsage } from "../fakes/usage.ts";
import { createTestDatabase } from "./postgres.ts";
import { type Child, spawnServe } from "./process.ts";

export interface Replica {
  readonly url: string;
  readonly child: Child;
  readonly dataDir: string;
  alive: boolean;
}

export interface TestCluster {
  readonly databaseUrl: string;
  readonly replicas: Replica[];
  readonly fake: FakeCodex;
  readonly auth: FakeAuth;
  readonly usage: FakeUsageState;
  readonly upstream: FakeServer;
  readonly env: Record<string, string>;
  /** Starts one more replica with the cluster's settings. */
  addReplica(): Promise<Replica>;
  stop(): Promise<void>;
}

export async function startCluster(opts: {
  replicas: number;
  env?: Record<string, string>;
}): Promise<TestCluster> {
  const databaseUrl = await createTestDatabase("cluster");
  const fake = fakeCodex();
  const auth = fakeAuth();
  const usage = fakeUsage();
  const upstream = startFakeServer({ ...auth.routes, ...usage.routes, ...fake.routes });
  const key = `${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}\n`;
  const env: Record<string, string> = {
    CODEX_LB_DATABASE_URL: databaseUrl,
    CODEX_LB_UPSTREAM_BASE_URL: `${upstream.url}/backend-api`,
    CODEX_LB_AUTH_BASE_URL: upstream.url,
    CODEX_LB_OAUTH_CALLBACK_PORT: "0",
    CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "3600",
    CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "3600",
    CODEX_LB_REQUEST_LOG_FLUSH_MS: "20",
    CODEX_LB_LOG_LEVEL: "info",
    ...opts.env,
  };
  const replicas: Replica[] = [];
  const addReplica = async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-replica-"));
    writeFileSync(join(dataDir, "encryption.key"), key, { mode: 0o600 });
    const child = await spawnServe({ ...env, CODEX_LB_DATA_DIR: dataDir }, dataDir, 30_000);
    const r: Replica = { url: `http://127.0.0.1:${child.port}`, child, dataDir, alive: true };
    child.proc.exited.then(() => {
      r.alive = false;
    });
    replicas.push(r);
    return r;
  };
  // One first (it migrates), then the others together.
  await addReplica();
  await Promise.all(Array.from({ length: opts.replicas - 1 }, () => addReplica()));
  return {
    databaseUrl,
    replicas,
    fake,
    auth,
    usage: usage.state,
    upstream,
    env,
    addReplica,
    async stop() {
      for (const r of replicas) if (r.alive) r.child.proc.kill("SIGTERM");
      // A replica still draining a slow stream past 10 s is killed: the test is over.
      const kill = setTimeout(() => {
        for (const r of replicas) if (r.alive) r.child.proc.kill("SIGKILL");
      }, 10_000);
      await Promise.all(replicas.map((r) => r.child.proc.exited));
      clearTimeout(kill);
      for (const r of replicas) rmSync(r.dataDir, { recursive: true, force: true });
      await upstream.stop();
    },
  };
}
