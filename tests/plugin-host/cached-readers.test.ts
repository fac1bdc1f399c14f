/**
 * The plugin API's two optional at-once readers (docs/plugins.md): `firewall.cached()` and
 * `runtimeSettings.cached()` answer exactly what `allowlist()` / `get()` would answer from their
 * caches: null once a change dropped the cache (the allowlist), or the document a change wrote
 * (the settings), so a handler deciding from them never acts on a list or a document the store no
 * longer has.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { GatewayServices, Plugin } from "../../src/plugin-api.ts";
import { jsonInit, localFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
let services: GatewayServices;
const reader: Plugin = {
  name: "tests.cached-reader",
  setup(ctx) {
    services = ctx.services;
  },
};

beforeAll(async () => {
  gw = await startGateway({ plugins: [reader] });
});
afterAll(async () => {
  await gw.stop();
});

test("firewall.cached() is allowlist()'s cached array, and null after the list changed", async () => {
  const put = (entries: string[]) => localFetch(gw, "/api/firewall", jsonInit("PUT", { entries }));
  expect((await put(["203.0.113.0/24"])).status).toBe(200);
  expect(services.firewall.cached?.()).toBeNull();
  const list = await services.firewall.allowlist();
  expect(list).toEqual(["203.0.113.0/24"]);
  expect(services.firewall.cached?.()).toBe(list);
  expect((await put(["198.51.100.7"])).status).toBe(200);
  expect(services.firewall.cached?.()).toBeNull();
  const next = await services.firewall.allowlist();
  expect(next).toEqual(["198.51.100.7"]);
  expect(services.firewall.cached?.()).toBe(next);
});

test("runtimeSettings.cached() is get()'s cached document, and the new one once the settings changed", async () => {
  const doc = await services.runtimeSettings.get();
  expect(services.runtimeSettings.cached?.()).toBe(doc);
  const flipped = !doc.apiKeyAuthEnabled;
  const res = await localFetch(gw, "/api/settings/access", jsonInit("PUT", { apiKeyAuthEnabled: flipped }));
  expect(res.status).toBe(200);
  // The write keeps the document it wrote: both readers answer it at once.
  const after = services.runtimeSettings.cached?.();
  expect(after?.apiKeyAuthEnabled).toBe(flipped);
  expect(after?.version).toBe(doc.version + 1);
  expect(await services.runtimeSettings.get()).toBe(after!);
});
