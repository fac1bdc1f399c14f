/**
 * `GET /docs/json` is built by src/app/openapi-document.ts, a copy of `@elysiajs/swagger`'s route
 * walk (the plugin itself is not loaded at run time). This mounts the real `swagger()` plugin on the
 * same gateway app and checks both documents are the same, so an upgrade of the package that
 * changes its walk fails here instead of drifting silently.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { swagger } from "@elysiajs/swagger";
import { normalizeOpenApi } from "../../src/app/openapi.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON.
type Json = any;
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.stop();
});

test("/docs/json is the document the real swagger() plugin builds for the same app", async () => {
  const ours: Json = await (await fetch(`${gw.url}/docs/json`)).json();
  expect(Object.keys(ours.paths).length).toBeGreaterThan(10);

  // The app is compiled already: the plugin's route is not served, its handler is called directly
  // (it reads the routes of the app it is mounted on, as it would when serving).
  const plugin = swagger({
    path: "/plugin-docs",
    exclude: ["/docs", "/docs/json"],
    documentation: { info: ours.info },
  });
  gw.running.gateway.app.use(plugin);
  const route = plugin.routes.find((r) => r.path === "/plugin-docs/json");
  expect(route).toBeDefined();
  const built = await (route!.handler as () => Json)();
  const theirs: Json = normalizeOpenApi(structuredClone(built));
  expect(theirs).toEqual(ours);
});
