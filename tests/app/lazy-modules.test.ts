/**
 * What a serving gateway does not load until it needs it (idle memory, issue 15): on SQLite,
 * node-postgres is never loaded; the OpenAPI document's mapping code (`@elysiajs/swagger/utils`)
 * loads on the first `GET /docs/json`, and the swagger plugin module (with its Scalar theme
 * package) never does. Kysely is loaded once, as its ES module build (a second, CommonJS copy came
 * in through kysely-bun-sqlite's "main"; without it idle RSS went 78.0 → 72.8 MB, see
 * docs/proxy.md). A fresh process (the test runner's own has loaded everything by now) boots the
 * real gateway and reports its module cache.
 */
import { expect, test } from "bun:test";
import { inFreshGateway } from "../support/fresh-gateway.ts";

const BODY = `
const loaded = () => {
  const keys = Object.keys(require.cache);
  return {
    pg: keys.some((k) => k.includes("/node_modules/pg/")),
    swaggerPlugin: keys.some((k) => /@elysiajs\\/swagger\\/dist\\/index/.test(k)),
    scalar: keys.some((k) => k.includes("/node_modules/@scalar/")),
    swaggerUtils: keys.some((k) => /@elysiajs\\/swagger\\/dist\\/utils/.test(k)),
    kyselyEsm: keys.some((k) => k.includes("/node_modules/kysely/dist/esm/")),
    kyselyCjs: keys.some((k) => k.includes("/node_modules/kysely/dist/cjs/")),
  };
};
const before = loaded();
const res = await fetch("http://127.0.0.1:" + running.listening.port + "/docs/json");
const doc = await res.json();
const after = loaded();
await running.shutdown();
console.log("RESULT " + JSON.stringify({ before, after, status: res.status, title: doc.info.title, paths: Object.keys(doc.paths) }));
`;

test("a gateway on SQLite loads neither pg nor the swagger plugin nor a second Kysely; the document's code loads on first use", async () => {
  const result = await inFreshGateway<{
    before: unknown;
    after: unknown;
    status: number;
    title: string;
    paths: string[];
  }>({ body: BODY });
  const kysely = { kyselyEsm: true, kyselyCjs: false };
  expect(result.before).toEqual({
    pg: false,
    swaggerPlugin: false,
    scalar: false,
    swaggerUtils: false,
    ...kysely,
  });
  expect(result.after).toEqual({
    pg: false,
    swaggerPlugin: false,
    scalar: false,
    swaggerUtils: true,
    ...kysely,
  });
  expect(result.status).toBe(200);
  expect(result.title).toBe("codex-lb");
  expect(result.paths).toContain("/v1/responses");
  expect(result.paths).toContain("/api/accounts");
});
