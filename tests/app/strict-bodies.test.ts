/**
 * Every admin body schema is strict: a field the route does not know is a 400 naming it, never a
 * 200 that silently changed nothing (e.g. a typo in `PATCH /api/api-keys/{id}`).
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

type Route = { method: string; path: string; hooks?: { body?: { type?: string; properties?: object } } };

test("every admin route with a JSON object body refuses an unknown field with a 400 naming it", async () => {
  const routes = (gw.running.gateway.app.routes as Route[]).filter(
    (r) =>
      r.path.startsWith("/api/") &&
      ["POST", "PUT", "PATCH", "DELETE"].includes(r.method) &&
      r.hooks?.body?.type === "object",
  );
  expect(routes.length).toBeGreaterThanOrEqual(12);
  const wrong: string[] = [];
  for (const r of routes) {
    const path = r.path.replace(/:[^/]+/g, "does-not-exist");
    const res = await fetch(`${gw.url}${path}`, {
      method: r.method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ notAField: 1 }),
    });
    const body = (await res.json()) as { error?: { code?: string; message?: string; param?: string } };
    if (
      res.status !== 400 ||
      body.error?.param !== "notAField" ||
      !body.error?.message?.includes("notAField")
    )
      wrong.push(`${r.method} ${r.path} → ${res.status} ${JSON.stringify(body)}`);
  }
  expect(wrong).toEqual([]);
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
