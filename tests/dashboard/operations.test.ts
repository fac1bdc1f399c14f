/**
 * Acceptance, as an operator would, against the compiled binary and the fake upstream: log in with
 * TOTP, import an auth.json by upload, pause and resume an account, see an account whose refresh got
 * `token_expired` as `reauth_required` with its reason, create an API key and use it from the
 * `openai` SDK, and change the routing strategy and find it kept after a restart. Every step: no
 * request leaves the gateway's origin, no console error, no serious or critical accessibility
 * violation.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import OpenAI from "openai";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { totpAt } from "../../src/access/admin-auth/totp.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import {
  a11yViolations,
  type Gateway,
  importAccount,
  launchBrowser,
  startBinary,
  startUpstream,
  type Upstream,
  until,
  type Watch,
  watchedContext,
} from "./harness.ts";

/** Browser steps wait on real processes; generous, bounded. */
const STEP_TIMEOUT_MS = 30_000;
/** Setup may build dist/codex-lb first (a fresh clone). */
const SETUP_TIMEOUT_MS = 180_000;
const PASSWORD = "operations test passphrase";
let up: Upstream;
let gw: Gateway;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let watch: Watch;

beforeAll(async () => {
  up = startUpstream();
  gw = await startBinary(up);
  await importAccount(gw, up, "first");
  const res = await fetch(`${gw.url}/api/auth/password`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ newPassword: PASSWORD }),
  });
  expect(res.status).toBe(200);
  browser = await launchBrowser();
  ({ context, page, watch } = await watchedContext(browser, gw.url));
  await page.goto(`${gw.url}/`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gw?.stop();
  await up?.stop();
}, STEP_TIMEOUT_MS);

async function clean() {
  expect(watch.foreignRequests).toEqual([]);
  expect(watch.consoleErrors).toEqual([]);
  expect(await a11yViolations(page)).toEqual([]);
}

async function open(name: string) {
  await page.getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { name, level: 1 }).waitFor();
}

/** The session cookie of the browser, for API calls the test makes itself. */
async function cookie(): Promise<string> {
  return (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
}

test(
  "TOTP: set it up with the QR code page, then log in with password and code",
  async () => {
    await open("Settings");
    await page.getByRole("button", { name: "Set up TOTP" }).click();
    await page.getByRole("img", { name: "QR code for the authenticator app" }).waitFor();
    const secret = (await page.getByTestId("totp-secret").textContent())!.trim();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await clean();
    await page.getByLabel("Code from the authenticator app").fill(await totpAt(secret, Date.now()));
    await page.getByRole("button", { name: "Turn TOTP on" }).click();
    const codes = page.getByTestId("recovery-codes").locator("li");
    await codes.first().waitFor();
    expect(await codes.count()).toBe(10);
    await clean();

    await page.getByRole("button", { name: "Log out", exact: true }).click();
    await page.getByRole("heading", { name: "Log in to codex-lb" }).waitFor();
    await page.getByLabel("Password").fill(PASSWORD);
    // The code of the next 30 s step: the confirmation used this step's code, and a code is accepted once.
    await page.getByLabel("Authenticator code").fill(await totpAt(secret, Date.now() + 30_000));
    await clean();
    await page.getByRole("button", { name: "Log in" }).click();
    // Back where the operator was, logged in.
    await page.getByRole("heading", { name: "Settings", level: 1 }).waitFor();
    await page.getByText("TOTP is on: logging in needs a code from the authenticator app.").waitFor();
    await clean();
  },
  STEP_TIMEOUT_MS,
);

test(
  "import an auth.json by upload, then pause and resume that account",
  async () => {
    const who = identity("upload");
    const bundle = up.auth.issue(who);
    await open("Accounts");
    await page.getByLabel("Import a Codex CLI auth.json").setInputFiles({
      name: "auth.json",
      mimeType: "application/json",
      buffer: Buffer.from(JSON.stringify(authJsonOf(bundle))),
    });
    await page.getByRole("button", { name: "Import", exact: true }).click();
    await page
      .getByRole("status")
      .filter({ hasText: `Imported ${who.email}` })
      .waitFor();
    const row = page.locator(`tr[data-account="${who.email}"]`);
    await row.waitFor();
    expect(await row.locator(".badge").textContent()).toBe("Active");
    await clean();

    await row.getByRole("button", { name: `Pause ${who.email}` }).click();
    expect(
      await until(
        () => row.locator(".badge").textContent(),
        (t) => t === "Paused",
      ),
    ).toBe("Paused");
    await clean();
    const paused = await fetch(`${gw.url}/api/accounts`, { headers: { cookie: await cookie() } });
    const list = ((await paused.json()) as { accounts: { email: string; status: string }[] }).accounts;
    expect(list.find((a) => a.email === who.email)?.status).toBe("paused");

    await row.getByRole("button", { name: `Resume ${who.email}` }).click();
    expect(
      await until(
        () => row.locator(".badge").textContent(),
        (t) => t === "Active",
      ),
    ).toBe("Active");
    await clean();
  },
  STEP_TIMEOUT_MS,
);

test(
  "sign in a new account with a device code: the user code is shown, the account arrives when approved",
  async () => {
    const who = identity("device");
    up.auth.state.deviceIdentity = who;
    up.auth.state.deviceInterval = "0.05";
    up.auth.state.deviceSteps = ["pending", "approve"];
    await open("Accounts");
    await page.getByRole("button", { name: "Sign in with a device code" }).click();
    const code = page.getByTestId("user-code");
    await code.waitFor();
    expect(await code.textContent()).toBe("ABCD-1234");
    await page.getByRole("status").filter({ hasText: "Signed in: the account is in the pool." }).waitFor();
    await page.locator(`tr[data-account="${who.email}"]`).waitFor();
    await clean();
    await page.getByRole("button", { name: "Close" }).click();
  },
  STEP_TIMEOUT_MS,
);

test(
  "an account whose refresh got token_expired shows as reauth_required with its reason, live; re-login puts it back",
  async () => {
    await open("Accounts");
    const cookieHeader = await cookie();
    const who = await importAccount(gw, up, "expiring", { expiresInSeconds: 60, cookie: cookieHeader });
    up.auth.state.onRefresh = (rt) =>
      rt === who.bundle.refreshToken
        ? Response.json(
            { error: { code: "token_expired", message: "Provided token is expired" } },
            { status: 401 },
          )
        : undefined;
    const row = page.locator(`tr[data-account="${who.email}"]`);
    await row.waitFor();
    // The background refresh pass (every second here) tries the token; the page is told by /api/events.
    const badge = await until(
      () => row.locator(".badge").textContent(),
      (t) => t === "Re-login required",
      10_000,
    );
    expect(badge).toBe("Re-login required");
    expect(await row.locator(".reason").textContent()).toBe(
      "Authentication token expired - re-login required",
    );
    await clean();
    up.auth.state.onRefresh = null;

    // Re-login in place (browser PKCE; the browser ran elsewhere, so the callback address is pasted).
    await row.getByRole("button", { name: `Re-login ${who.email}` }).click();
    const link = page.getByRole("link", { name: "Open the sign-in page" });
    const authorizationUrl = new URL((await link.getAttribute("href"))!);
    const code = up.auth.authorize(who.who, authorizationUrl.searchParams.get("code_challenge"));
    const state = authorizationUrl.searchParams.get("state");
    await page
      .getByLabel("Callback address")
      .fill(`http://localhost:1455/auth/callback?code=${code}&state=${state}`);
    await page.getByRole("button", { name: "Finish sign-in" }).click();
    await page.getByRole("status").filter({ hasText: "Signed in: the account is in the pool." }).waitFor();
    expect(
      await until(
        () => row.locator(".badge").textContent(),
        (t) => t === "Active",
      ),
    ).toBe("Active");
    expect(await page.locator(`tr[data-account="${who.email}"]`).count()).toBe(1);
    await clean();
    await page.getByRole("button", { name: "Close" }).click();
  },
  STEP_TIMEOUT_MS,
);

test(
  "create an API key, use it from the openai SDK, and require keys from every client",
  async () => {
    await open("API keys");
    await page.getByLabel("Name").fill("ci");
    await page.getByLabel("Allowed models (comma-separated, empty = all)").fill("gpt-5.2");
    await page.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByTestId("new-key");
    await shown.waitFor();
    const key = (await shown.textContent())!.trim();
    expect(key).toMatch(/^sk-clb-/);
    await page.locator('tr[data-key="ci"]').waitFor();
    await clean();

    await open("Settings");
    await page.getByLabel("Require an API key from every proxy client").check();
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    await clean();

    const withKey = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const answer = await withKey.responses.create({ model: "gpt-5.2", input: "with a key" });
    expect(answer.output_text).toBe("Hello from the fake Codex backend.");
    const without = new OpenAI({ apiKey: "sk-clb-not-a-key", baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const refused = await without.responses.create({ model: "gpt-5.2", input: "no key" }).then(
      () => null,
      (e: unknown) => e as { status?: number },
    );
    expect(refused?.status).toBe(401);

    // The key's use shows on the API keys page.
    await open("API keys");
    const row = page.locator('tr[data-key="ci"]');
    expect(
      await until(
        () => row.textContent(),
        (t) => !(t ?? "").includes("never"),
      ),
    ).not.toContain("never");
    await clean();
  },
  STEP_TIMEOUT_MS,
);

test(
  "change the routing strategy; it is kept after a restart",
  async () => {
    await open("Settings");
    const strategy = page.getByLabel("Routing strategy");
    await strategy.selectOption("round_robin");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    await clean();

    // Leave the page (its live stream would see the gateway go away), restart, come back.
    await page.goto("about:blank");
    await gw.restart();
    await page.goto(`${gw.url}/dashboard/settings`);
    await page.getByRole("heading", { name: "Settings", level: 1 }).waitFor();
    expect(
      await until(
        () => strategy.inputValue(),
        (v) => v === "round_robin",
      ),
    ).toBe("round_robin");
    const res = await fetch(`${gw.url}/api/settings`, { headers: { cookie: await cookie() } });
    expect(((await res.json()) as { routingStrategy: string }).routingStrategy).toBe("round_robin");
    await clean();
  },
  STEP_TIMEOUT_MS,
);
