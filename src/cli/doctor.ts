/**
 * `codex-lb doctor`: checks what usually goes wrong when running the gateway, without changing
 * anything: the data dir, the store (opens, answers, migrations, integrity), the encryption key
 * (present, private, opens the stored tokens), the upstream and auth servers (reachable), the
 * clock (skew against the upstream's `Date`), the listening address (free, or a codex-lb), and the
 * connection guard (this Bun exposes the hook it needs).
 *
 * @module
 */

import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Migrator, sql } from "kysely";
import { KEY_FILE, TokenCipher } from "../accounts/crypto.ts";
import { AccountRepository } from "../accounts/repository.ts";
import { listSnapshots } from "../accounts/snapshots.ts";
import { systemClock } from "../core/clock.ts";
import { isUsable } from "../core/health.ts";
import { listen } from "../runtime/bun/serve.ts";
import { bundledMigrations } from "../store/migrations/index.ts";
import { describeLocation, openStore } from "../store/store.ts";
import { type Command, EXIT, type Io, type Parsed } from "./args.ts";
import { listenError } from "./boot.ts";
import { JSON_FLAG, settingsFor } from "./context.ts";

export type CheckStatus = "ok" | "warn" | "fail" | "skip";
export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

/** Clock skew against the upstream above which the check warns / fails, in seconds. */
const SKEW_WARN_S = 5;
const SKEW_FAIL_S = 60;
const NET_TIMEOUT_MS = 5000;

const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

async function reach(url: string): Promise<{ status: number; date: string | null; ms: number } | string> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method: "GET",
      signal: AbortSignal.timeout(NET_TIMEOUT_MS),
      redirect: "manual",
    });
    await res.body?.cancel();
    return { status: res.status, date: res.headers.get("date"), ms: Math.round(performance.now() - t0) };
  } catch (e) {
    return e instanceof Error
      ? e.name === "TimeoutError"
        ? `no answer within ${NET_TIMEOUT_MS} ms`
        : e.message
      : String(e);
  }
}

export async function runChecks(p: Parsed, io: Io): Promise<{ store: string; checks: Check[] }> {
  const { settings, location } = await settingsFor(io, p);
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string) => checks.push({ name, status, detail });

  // 1. Data dir.
  const dir = settings.dataDir;
  if (!existsSync(dir)) add("data dir", "warn", `${dir} does not exist yet (serve or migrate creates it)`);
  else if (!statSync(dir).isDirectory())
    add("data dir", "fail", `${dir} is not a directory (CODEX_LB_DATA_DIR)`);
  else {
    const m = mode(dir);
    add(
      "data dir",
      m & 0o077 ? "warn" : "ok",
      `${dir} (${octal(m)}${m & 0o077 ? ", readable by others: chmod 700 it" : ""})`,
    );
  }

  // 2. Store.
  let accounts: Awaited<ReturnType<typeof listSnapshots>> | null = null;
  let store: ReturnType<typeof openStore> | null = null;
  const where = describeLocation(location);
  const file = location.kind === "sqlite" && location.path !== ":memory:" ? location.path : null;
  if (file && !existsSync(file)) {
    add("store", "warn", `${file} does not exist yet (serve or migrate creates it)`);
  } else {
    try {
      store = openStore(location);
      if (!(await store.ping())) throw new Error("does not answer a trivial query");
      const verdict =
        location.kind === "sqlite"
          ? Object.values((await sql`PRAGMA quick_check`.execute(store.db)).rows[0] ?? {})[0]
          : "ok";
      const migrations = await new Migrator({ db: store.db, provider: bundledMigrations }).getMigrations();
      const pending = migrations.filter((m) => m.executedAt === undefined).length;
      if (verdict !== "ok") add("store", "fail", `${where}: integrity check says ${String(verdict)}`);
      else if (pending > 0)
        add("store", "warn", `${where}: ${pending} migration(s) pending (applied by serve or migrate)`);
      else add("store", "ok", `${where} (schema up to date, integrity ok)`);
      if (pending === 0) accounts = await listSnapshots(store.db);
    } catch (e) {
      add("store", "fail", `${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // 3. Encryption key.
  const keyPath = join(dir, KEY_FILE);
  if (!existsSync(keyPath)) {
    add(
      "encryption key",
      accounts && accounts.length > 0 ? "fail" : "warn",
      `${keyPath} is missing${accounts && accounts.length > 0 ? ": the stored tokens cannot be opened" : " (created on first use)"}`,
    );
  } else {
    const raw = Buffer.from(readFileSync(keyPath, "utf8").trim(), "base64");
    const m = mode(keyPath);
    if (raw.length !== 32) add("encryption key", "fail", `${keyPath} does not hold a 32-byte base64 key`);
    else if (store && accounts && accounts.length > 0) {
      const repo = new AccountRepository(store.db, new TokenCipher(new Uint8Array(raw)));
      let opened = 0;
      let sealed = 0;
      for (const a of accounts) {
        try {
          const c = await repo.credentials(a.id);
          if (c) {
            sealed++;
            opened++;
          }
        } catch {
          sealed++;
        }
      }
      add(
        "encryption key",
        opened < sealed ? "fail" : m & 0o077 ? "warn" : "ok",
        opened < sealed
          ? `${keyPath} does not open ${sealed - opened} of ${sealed} accounts' tokens (a key from another data dir?)`
          : `${keyPath} (${octal(m)}) opens the tokens of ${opened} account(s)`,
      );
    } else add("encryption key", m & 0o077 ? "warn" : "ok", `${keyPath} (${octal(m)})`);
  }
  if (accounts) {
    const now = systemClock.now();
    const usable = accounts.filter((a) => isUsable(a, now)).length;
    add(
      "accounts",
      accounts.length === 0 ? "warn" : usable === 0 ? "fail" : "ok",
      accounts.length === 0
        ? "no account yet (codex-lb accounts import FILE)"
        : `${usable} of ${accounts.length} usable now`,
    );
  }
  await store?.close();

  // 4. Upstream, auth server and clock.
  if (p.flags.offline === true) {
    add("upstream", "skip", "--offline");
    add("auth server", "skip", "--offline");
    add("clock", "skip", "--offline");
  } else {
    const up = await reach(`${settings.upstreamBaseUrl}/codex/models`);
    if (typeof up === "string") add("upstream", "fail", `${settings.upstreamBaseUrl} unreachable: ${up}`);
    else add("upstream", "ok", `${settings.upstreamBaseUrl} answers (HTTP ${up.status}, ${up.ms} ms)`);
    const auth = await reach(`${settings.authBaseUrl}/.well-known/openid-configuration`);
    if (typeof auth === "string") add("auth server", "fail", `${settings.authBaseUrl} unreachable: ${auth}`);
    else add("auth server", "ok", `${settings.authBaseUrl} answers (HTTP ${auth.status}, ${auth.ms} ms)`);
    const date = typeof up === "string" ? null : up.date;
    const theirs = date ? Date.parse(date) : Number.NaN;
    if (!Number.isFinite(theirs)) add("clock", "skip", "the upstream sent no Date header to compare with");
    else {
      // Date has one-second resolution; half the round trip is the best estimate of its moment.
      const skew = Math.abs(systemClock.now() - (typeof up === "string" ? 0 : up.ms / 2) - theirs) / 1000;
      add(
        "clock",
        skew > SKEW_FAIL_S ? "fail" : skew > SKEW_WARN_S ? "warn" : "ok",
        `${skew.toFixed(1)} s from the upstream's clock${skew > SKEW_WARN_S ? " (token expiry and quota resets depend on it: sync the clock)" : ""}`,
      );
    }
  }

  // 5. Listening address.
  const address = `${settings.host}:${settings.port}`;
  if (settings.port === 0) add("listen", "ok", `${settings.host}, a free port picked at start`);
  else {
    try {
      const l = listen(() => new Response("doctor"), {
        host: settings.host,
        port: settings.port,
        maxRequestBodySize: 1,
        connectionIdleTimeoutSeconds: settings.connectionIdleTimeoutSeconds,
        headersTimeoutSeconds: settings.headersTimeoutSeconds,
        maxPendingConnectionsPerAddress: settings.maxPendingConnectionsPerAddress,
      });
      await l.close(0);
      add("listen", "ok", `${address} is free`);
    } catch (e) {
      const err = listenError(e, settings.host, settings.port);
      const busy = (e as NodeJS.ErrnoException).code === "EADDRINUSE";
      const health = busy
        ? await reach(
            `http://${settings.host === "0.0.0.0" ? "127.0.0.1" : settings.host}:${settings.port}/health`,
          )
        : null;
      if (health && typeof health !== "string" && health.status === 200)
        add("listen", "ok", `${address} is in use by a running gateway (its /health answers)`);
      else add("listen", "fail", err.message);
    }
  }

  // 6. Connection guard: the header deadline and per-address cap need this Bun's node:http internals.
  try {
    const g = listen(() => new Response("doctor"), {
      host: "127.0.0.1",
      port: 0,
      maxRequestBodySize: 1,
      connectionIdleTimeoutSeconds: settings.connectionIdleTimeoutSeconds,
      headersTimeoutSeconds: settings.headersTimeoutSeconds,
      maxPendingConnectionsPerAddress: settings.maxPendingConnectionsPerAddress,
    });
    await g.close(0);
    if (g.guarded)
      add(
        "connection guard",
        "ok",
        `first headers within ${settings.headersTimeoutSeconds} s, at most ${settings.maxPendingConnectionsPerAddress} pending connections per address`,
      );
    else
      add(
        "connection guard",
        "warn",
        "this Bun's node:http does not expose its server: CODEX_LB_HEADERS_TIMEOUT_SECONDS and CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS would not apply (use Bun 1.4.5 or a reverse proxy that limits both)",
      );
  } catch (e) {
    add("connection guard", "skip", `could not listen on 127.0.0.1 to check it: ${(e as Error).message}`);
  }
  return { store: where, checks };
}

export const doctorCommand: Command = {
  name: "doctor",
  summary: "check the data dir, store, key, upstream, clock, listening address and connection guard",
  description:
    "Changes nothing. Exit 0 when no check failed (warnings allowed), 1 when one did.\n" +
    "Network checks (upstream, auth server, clock) need the upstream reachable; --offline skips them.",
  flags: [
    { name: "offline", help: "skip the upstream, auth server and clock checks" },
    { name: "host", value: "HOST", help: "check this listening address instead of CODEX_LB_HOST" },
    { name: "port", value: "PORT", help: "check this port instead of CODEX_LB_PORT" },
    { name: "data-dir", value: "DIR", help: "check this data dir instead of CODEX_LB_DATA_DIR" },
    JSON_FLAG,
  ],
  async run(p, io) {
    const { store, checks } = await runChecks(p, io);
    const failed = checks.some((c) => c.status === "fail");
    if (p.flags.json === true)
      io.stdout.write(`${JSON.stringify({ store, ok: !failed, checks }, null, 2)}\n`);
    else {
      io.stderr.write(`codex-lb: store ${store}\n`);
      const w = Math.max(...checks.map((c) => c.name.length));
      for (const c of checks) io.stdout.write(`${c.status.padEnd(4)}  ${c.name.padEnd(w)}  ${c.detail}\n`);
    }
    return failed ? EXIT.failure : EXIT.ok;
  },
};
