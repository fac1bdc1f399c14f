import { afterAll, beforeAll, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.stop();
});

type Operation = {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  requestBody?: unknown;
};

test("every admin route in the OpenAPI document declares a response schema", async () => {
  const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
    paths: Record<string, Record<string, Operation>>;
  };
  const admin = Object.entries(doc.paths).filter(([p]) => p.startsWith("/api/"));
  expect(admin.length).toBeGreaterThan(0);
  const missing: string[] = [];
  for (const [path, ops] of admin) {
    for (const [method, op] of Object.entries(ops)) {
      const ok = Object.entries(op.responses ?? {}).some(
        ([status, r]) => status.startsWith("2") && Object.values(r.content ?? {}).some((c) => c.schema),
      );
      if (!ok && !(op.responses && "204" in op.responses)) missing.push(`${method.toUpperCase()} ${path}`);
    }
  }
  expect(missing).toEqual([]);
});

test("every admin route registered in the app appears in the OpenAPI document", async () => {
  const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
    paths: Record<string, Record<string, Operation>>;
  };
  const documented = new Set(
    Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)),
  );
  const routes = (gw.running.gateway.app.routes as { method: string; path: string }[])
    .filter((r) => r.path.startsWith("/api/"))
    .map((r) => `${r.method.toUpperCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
  expect(routes.filter((r) => !documented.has(r))).toEqual([]);
});
