/**
 * Every admin body schema is strict: a field the route does not know is a 400 naming it, never a
 * 200 that silently changed nothing (e.g. a typo in `PATCH /api/api-keys/{id}`). A route that takes
 * no body refuses any field the same way.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { CODEX_LB_OAUTH_CALLBACK_PORT: "0" } });
});
afterAll(async () => {
  await gw.stop();
});

type Route = {
  method: string;
  path: string;
  hooks?: { body?: { type?: string; properties?: object }; parse?: unknown };
};

test("every admin POST/PUT/PATCH/DELETE route refuses an unknown field with a 400 naming it", async () => {
  const routes = (gw.running.gateway.app.routes as Route[]).filter(
    (r) => r.path.startsWith("/api/") && ["POST", "PUT", "PATCH", "DELETE"].includes(r.method),
  );
  // Routes that read a file themselves (an auth.json, a Python export) take any JSON document.
  const parsesItself = (r: Route) => JSON.stringify(r.hooks?.parse ?? null).includes('"none"');
  const ownParser = routes.filter(parsesItself).map((r) => `${r.method} ${r.path}`);
  expect(ownParser.sort()).toEqual(["POST /api/accounts/import", "POST /api/import/python"]);
  const walked = routes.filter((r) => !parsesItself(r));
  expect(walked.length).toBeGreaterThanOrEqual(24);
  const wrong: string[] = [];
  for (const r of walked) {
    const path = r.path.replace(/:[^/]+/g, "does-not-exist");
    const res = await fetch(`${gw.url}${path}`, {
      method: r.method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ notAField: 1 }),
    });
    const body = (await res.json()) as { error?: { code?: string; message?: string; param?: string } };
    if (
      res.status !== 400 ||
      body.error?.code !== "validation_error" ||
      body.error?.param !== "notAField" ||
      !body.error?.message?.includes("notAField")
    )
      wrong.push(`${r.method} ${r.path} → ${res.status} ${JSON.stringify(body)}`);
  }
  expect(wrong).toEqual([]);
});

test("a route without a body still accepts an empty object or no body", async () => {
  const res = await fetch(`${gw.url}/api/auth/totp/setup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  expect(res.status).not.toBe(400);
});

test("PATCH /api/api-keys/{id} with a typo is a 400 and changes nothing", async () => {
  const created = await fetch(`${gw.url}/api/api-keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "strict" }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const res = await fetch(`${gw.url}/api/api-keys/${id}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ nmae: "renamed" }),
  });
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: { code: string; message: string; param: string } };
  expect(body.error).toMatchObject({ code: "validation_error", param: "nmae" });
  expect(body.error.message).toContain("'nmae'");
  const list = (await (await fetch(`${gw.url}/api/api-keys`)).json()) as {
    apiKeys?: { id: string; name: string }[];
  };
  const keys = list.apiKeys ?? (list as unknown as { id: string; name: string }[]);
  expect(keys.find((k) => k.id === id)?.name).toBe("strict");
});

test("an unknown field inside a nested object is named with its path", async () => {
  const res = await fetch(`${gw.url}/api/api-keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name: "nested",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 10, maxValu: 5 }],
    }),
  });
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: { code: string; message: string; param: string } };
  expect(body.error).toMatchObject({ code: "validation_error", param: "limits.0.maxValu" });
  expect(body.error.message).toContain("'limits.0.maxValu'");
  const list = (await (await fetch(`${gw.url}/api/api-keys`)).json()) as { name: string }[];
  expect(list.map((k) => k.name)).not.toContain("nested");
});
