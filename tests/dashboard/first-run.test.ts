/**
 * Acceptance, as an operator would, against the compiled binary and the fake upstream: the first-run
 * page sets the password, two accounts show their quota bars, a request made with the `openai` SDK
 * appears in Requests within 2 s without a reload and is found by its request id, and `/docs` works
 * offline after login. Every step: no request leaves the gateway's origin, no console error, no
 * serious or critical accessibility violation.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import OpenAI from "openai";
import type { Browser, BrowserContext, Page } from "playwright-core";
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
const PASSWORD = "dashboard test passphrase";
let up: Upstream;
let gw: Gateway;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let watch: Watch;
let accounts: Awaited<ReturnType<typeof importAccount>>[];

beforeAll(async () => {
  up = startUpstream();
  up.usage.primary = { usedPercent: 42 };
  up.usage.secondary = { usedPercent: 17 };
  gw = await startBinary(up);
  // Before any password exists the admin API is open to this machine: two accounts are added.
  accounts = [await importAccount(gw, up, "alpha"), await importAccount(gw, up, "beta")];
  browser = await launchBrowser();
  ({ context, page, watch } = await watchedContext(browser, gw.url));
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gw?.stop();
  await up?.stop();
}, STEP_TIMEOUT_MS);

/** The checks every step ends with. */
async function clean() {
  expect(watch.foreignRequests).toEqual([]);
  expect(watch.consoleErrors).toEqual([]);
  expect(await a11yViolations(page)).toEqual([]);
}

test(
  "first run: set the password, then the overview shows both accounts with their quota bars",
  async () => {
    await page.goto(`${gw.url}/`);
    await page.getByRole("heading", { name: "Welcome to codex-lb" }).waitFor();
    await clean();
    await page.getByLabel("New password (at least 8 characters)").fill(PASSWORD);
    await page.getByLabel("Repeat the password").fill(PASSWORD);
    await page.getByRole("button", { name: "Set password" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    for (const a of accounts) {
      const card = page.locator(`li[data-account="${a.email}"]`);
      await card.waitFor();
      // Usage polling fills the bars (the fake reports 42 % and 17 %).
      const fiveHour = card.getByRole("progressbar", { name: "5-hour quota used" });
      expect(
        await until(
          () => fiveHour.getAttribute("aria-valuenow"),
          (v) => v === "42",
          10_000,
        ),
      ).toBe("42");
      expect(
        await card.getByRole("progressbar", { name: "Weekly quota used" }).getAttribute("aria-valuenow"),
      ).toBe("17");
      expect(await card.textContent()).toContain("resets in");
    }
    expect(await page.getByTestId("accounts-usable").textContent()).toBe("2 / 2");
    await clean();
    // The API now needs a session: a request without the cookie is refused.
    expect((await fetch(`${gw.url}/api/accounts`)).status).toBe(401);
  },
  STEP_TIMEOUT_MS,
);

test(
  "log out and in again with the password",
  async () => {
    await page.getByRole("button", { name: "Log out", exact: true }).click();
    await page.getByRole("heading", { name: "Log in to codex-lb" }).waitFor();
    await clean();
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await clean();
  },
  STEP_TIMEOUT_MS,
);

test(
  "a request made with the openai SDK appears in Requests within 2 s, live, and is found by its id",
  async () => {
    await page.getByRole("link", { name: "Requests" }).click();
    await page.getByRole("heading", { name: "Requests" }).waitFor();
    await page.getByText("● Live").waitFor();
    const urlBefore = page.url();
    const requestId = `sdk-${crypto.randomUUID()}`;
    const sdk = new OpenAI({ apiKey: "unused", baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const answer = await sdk.responses.create(
      { model: "gpt-5.2", input: "hello dashboard" },
      { headers: { "x-request-id": requestId } },
    );
    expect(answer.output_text).toBe("Hello from the fake Codex backend.");
    const t0 = Date.now();
    const row = page.locator(`tr[data-request-id="${requestId}"]`);
    await row.waitFor({ timeout: 2_000 });
    const seenAfterMs = Date.now() - t0;
    expect(seenAfterMs).toBeLessThan(2_000);
    expect(page.url()).toBe(urlBefore);
    // A second request, so the lookup has something to leave out.
    await sdk.responses.create({ model: "gpt-5.2", input: "another" });
    expect(
      await until(
        () => page.locator("tbody tr[data-request-id]").count(),
        (n) => n >= 2,
      ),
    ).toBeGreaterThanOrEqual(2);
    await clean();

    await page.getByLabel("Find by request id").fill(requestId);
    await page.getByRole("button", { name: "Find", exact: true }).click();
    expect(
      await until(
        () => page.locator("tbody tr[data-request-id]").count(),
        (n) => n === 1,
      ),
    ).toBe(1);
    await row.getByRole("button", { name: requestId }).click();
    const detail = page.getByRole("region", { name: "Request details" });
    await detail.waitFor();
    const text = (await detail.textContent()) ?? "";
    expect(text).toContain(requestId);
    expect(text).toContain("/v1/responses");
    expect(text).toContain("gpt-5.2");
    expect(text).toContain("Time to first byte");
    expect(text).toContain("Queue wait");
    // What the panel shows is the admin API's: the request's timings, queue wait included.
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    const logged = (await (
      await fetch(`${gw.url}/api/request-logs?requestId=${requestId}`, { headers: { cookie } })
    ).json()) as { items: { queueMs: number | null; ttfbMs: number | null; latencyMs: number | null }[] };
    expect(logged.items).toHaveLength(1);
    const timing = logged.items[0]!;
    expect(timing.queueMs).toBeGreaterThanOrEqual(0);
    expect(timing.ttfbMs).toBeGreaterThanOrEqual(timing.queueMs!);
    expect(timing.latencyMs).toBeGreaterThanOrEqual(timing.ttfbMs!);
    await clean();
  },
  STEP_TIMEOUT_MS,
);

test(
  "/docs works offline after login: Swagger UI from the binary lists the admin API",
  async () => {
    await page.goto(`${gw.url}/docs`);
    await page
      .locator(".opblock-summary-path", { hasText: "/api/events" })
      .first()
      .waitFor({ timeout: 10_000 });
    expect(await page.locator(".opblock").count()).toBeGreaterThan(20);
    // Swagger UI too (its colours are corrected by /docs/assets/docs.css; deep links are off).
    expect(await a11yViolations(page)).toEqual([]);
    expect(watch.foreignRequests).toEqual([]);
    expect(watch.consoleErrors).toEqual([]);
  },
  STEP_TIMEOUT_MS,
);

test(
  "/docs without a session sends the browser to the login and back",
  async () => {
    const other = await watchedContext(browser, gw.url);
    try {
      await other.page.goto(`${gw.url}/docs`);
      await other.page.getByRole("heading", { name: "Log in to codex-lb" }).waitFor();
      expect(new URL(other.page.url()).pathname).toBe("/dashboard/login");
      await other.page.getByLabel("Password").fill(PASSWORD);
      await other.page.getByRole("button", { name: "Log in" }).click();
      await other.page.waitForURL(`${gw.url}/docs`);
      await other.page.locator(".opblock").first().waitFor({ timeout: 10_000 });
      expect(await a11yViolations(other.page)).toEqual([]);
      expect(other.watch.foreignRequests).toEqual([]);
      expect(other.watch.consoleErrors).toEqual([]);
    } finally {
      await other.context.close();
    }
  },
  STEP_TIMEOUT_MS,
);

test(
  "dark theme on a phone: the menu opens and a page is reached with the keyboard alone",
  async () => {
    await page.goto(`${gw.url}/dashboard/overview`);
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.getByRole("button", { name: "Dark theme" }).click();
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? "");
    expect(await until(theme, (t) => t === "dark")).toBe("dark");
    await page.setViewportSize({ width: 390, height: 800 });
    const menu = page.getByRole("button", { name: "Menu" });
    expect(await menu.getAttribute("aria-expanded")).toBe("false");
    expect(await page.getByRole("link", { name: "Accounts" }).isVisible()).toBe(false);
    await menu.focus();
    await page.keyboard.press("Enter");
    expect(await menu.getAttribute("aria-expanded")).toBe("true");
    // Tab from the menu button to the first link, then on to Accounts, and follow it.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Accounts");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Accounts", level: 1 }).waitFor();
    await clean();
    await page.setViewportSize({ width: 1280, height: 900 });
  },
  STEP_TIMEOUT_MS,
);
