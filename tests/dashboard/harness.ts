/**
 * The dashboard's browser-test world: the compiled binary (`dist/codex-lb`, built here when it is
 * missing or older than the sources), the fake ChatGPT backend and auth server, and Debian's
 * Chromium driven by playwright-core. Every page a test opens is watched: a request to another
 * origin, a console error or an uncaught page error fails the test, and `checkA11y` runs axe-core
 * (injected from node_modules) and fails on serious or critical violations.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { type FakeAuth, fakeAuth, type TokenBundle } from "../fakes/auth.ts";
import { type FakeCodex, fakeCodex } from "../fakes/codex.ts";
import type { FakeIdentity } from "../fakes/jwt.ts";
import { type FakeServer, startFakeServer } from "../fakes/server.ts";
import { type FakeUsageState, fakeUsage } from "../fakes/usage.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import { type Child, repoRoot, spawnServe } from "../support/process.ts";

export const binaryPath = process.env.CODEX_LB_BIN ?? join(repoRoot, "dist", "codex-lb");

/** Newest modification time of the files the binary is built from. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(join(repoRoot, "src"));
  walk(join(repoRoot, "plugins"));
  for (const f of ["package.json", "bun.lock", "tsconfig.json", "scripts/build.ts"])
    newest = Math.max(newest, statSync(join(repoRoot, f)).mtimeMs);
  return newest;
}

/** Builds `dist/codex-lb` when it is missing or stale (a given `CODEX_LB_BIN` is used as it is). */
export function ensureBinary(): string {
  if (process.env.CODEX_LB_BIN) return binaryPath;
  let built = 0;
  try {
    built = statSync(binaryPath).mtimeMs;
  } catch {
    built = 0;
  }
  if (built < newestSource()) {
    execFileSync(process.execPath, ["run", join(repoRoot, "scripts/build.ts")], {
      cwd: repoRoot,
      stdio: "ignore",
    });
  }
  return binaryPath;
}

/** The fake upstream: Codex responses, auth (refresh, login) and usage on one 127.0.0.1 server. */
export interface Upstream {
  readonly server: FakeServer;
  readonly codex: FakeCodex;
  readonly auth: FakeAuth;
  readonly usage: FakeUsageState;
  stop(): Promise<void>;
}

export function startUpstream(): Upstream {
  const codex = fakeCodex();
  const auth = fakeAuth();
  const usage = fakeUsage();
  const server = startFakeServer({ ...codex.routes, ...auth.routes, ...usage.routes });
  return { server, codex, auth, usage: usage.state, stop: () => server.stop() };
}

/** A running binary on a data dir that outlives restarts. */
export interface Gateway {
  readonly url: string;
  readonly dataDir: string;
  child: Child;
  /** Stops (SIGTERM) and starts the binary again on the same data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBinary(up: Upstream, env: Record<string, string> = {}): Promise<Gateway> {
  const bin = ensureBinary();
  const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-dash-"));
  const fullEnv = {
    CODEX_LB_DATA_DIR: dataDir,
    CODEX_LB_HOST: "127.0.0.1",
    CODEX_LB_UPSTREAM_BASE_URL: `${up.server.url}/backend-api`,
    CODEX_LB_AUTH_BASE_URL: up.server.url,
    CODEX_LB_OAUTH_CALLBACK_PORT: "0",
    CODEX_LB_USAGE_REFRESH_INTERVAL_SECONDS: "1",
    CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "1",
    CODEX_LB_REQUEST_LOG_FLUSH_MS: "100",
    CODEX_LB_SHUTDOWN_GRACE_SECONDS: "2",
    CODEX_LB_LOG_LEVEL: "info",
    ...env,
  };
  let port = 0;
  const start = async () => {
    // The same port after a restart, so the browser's origin (and its cookie) stays the same.
    const child = await spawnServe({ ...fullEnv, CODEX_LB_PORT: String(port) }, dataDir, 15_000, [], [bin]);
    port = child.port;
    return child;
  };
  const gw: Gateway = {
    url: "",
    dataDir,
    child: await start(),
    async restart() {
      await stopChild(gw.child);
      gw.child = await start();
    },
    async stop() {
      await stopChild(gw.child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  (gw as { url: string }).url = `http://127.0.0.1:${port}`;
  return gw;
}

async function stopChild(child: Child): Promise<void> {
  child.proc.kill("SIGTERM");
  const code = await child.proc.exited;
  await child.drained;
  if (code !== 0) throw new Error(`codex-lb exited ${code}: ${child.output()}`);
}

/** Imports a fresh identity through the admin API (before a password is set, from this machine). */
export async function importAccount(
  gw: Gateway,
  up: Upstream,
  label: string,
  opts: { expiresInSeconds?: number; cookie?: string } = {},
): Promise<{ id: string; email: string; chatgptAccountId: string; bundle: TokenBundle; who: FakeIdentity }> {
  const who = identity(label);
  const bundle = up.auth.issue(who, { expiresInSeconds: opts.expiresInSeconds ?? 3600 });
  const res = await fetch(`${gw.url}/api/accounts/import`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(opts.cookie ? { cookie: opts.cookie } : {}) },
    body: JSON.stringify(authJsonOf(bundle)),
  });
  if (res.status !== 200) throw new Error(`import failed: ${res.status} ${await res.text()}`);
  const { accountId } = (await res.json()) as { accountId: string };
  return { id: accountId, email: who.email, chatgptAccountId: who.chatgptAccountId, bundle, who };
}

/** What a watched page did that a test must not see. */
export interface Watch {
  readonly foreignRequests: string[];
  readonly consoleErrors: string[];
}

/**
 * Launches Debian's Chromium (never a downloaded browser), headless. Playwright gives every launch
 * a fresh temporary profile (`--user-data-dir`) and removes it on close.
 */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = execFileSync("sh", ["-c", "command -v chromium || true"], {
    encoding: "utf8",
  }).trim();
  if (!executablePath) throw new Error("chromium not found: apt-get install chromium");
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

/** A new browser context whose pages are watched for foreign requests and console errors. */
export async function watchedContext(
  browser: Browser,
  origin: string,
  opts: { viewport?: { width: number; height: number } } = {},
): Promise<{ context: BrowserContext; page: Page; watch: Watch }> {
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 900 } });
  const watch: Watch = { foreignRequests: [], consoleErrors: [] };
  const allowed = (url: string) =>
    url.startsWith(`${origin}/`) || url.startsWith("data:") || url.startsWith("blob:");
  context.on("request", (r) => {
    if (!allowed(r.url())) watch.foreignRequests.push(r.url());
  });
  const hook = (page: Page) => {
    page.on("console", (m) => {
      if (m.type() === "error") watch.consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => watch.consoleErrors.push(`pageerror: ${e.message}`));
  };
  context.on("page", hook);
  const page = await context.newPage();
  return { context, page, watch };
}

const axeSource = readFileSync(join(repoRoot, "node_modules/axe-core/axe.min.js"), "utf8");

/** Serious or critical axe-core violations on the page as it is now ("id: target" lines). */
export async function a11yViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (scripts from its origin only) stays on.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<unknown> } })
      .axe;
    const r = (await axe.run(document, { resultTypes: ["violations"] })) as {
      violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[];
    };
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.map((n) => n.target.join(" ")),
    }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.targets.slice(0, 3).join(", ")}`);
}

/** Polls `fn` until `ok(value)` (at most `ms`); returns the last value for the test to assert on. */
export async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await Bun.sleep(25);
  }
}
