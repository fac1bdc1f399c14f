/**
 * Every bad input gets a 4xx in its route's envelope, never a 5xx, and the process stays up: walk
 * the app's route table and send each route malformed bodies, wrong types and odd parameters.
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

const bodies: [string, string, string][] = [
  ["broken JSON", "application/json", '{"model": '],
  ["JSON array", "application/json", "[1,2,3]"],
  ["JSON string", "application/json", '"hello"'],
  [
    "wrong types",
    "application/json",
    '{"model": 5, "messages": "x", "input": {}, "name": [], "method": 7, "limits": "no"}',
  ],
  ["form body", "application/x-www-form-urlencoded", "a=1&b=2"],
  ["binary", "application/octet-stream", "\u0000\u0001\u0002"],
  ["empty", "application/json", ""],
];

test("no route answers a bad body with a 5xx, and each answer is a JSON error envelope", async () => {
  const routes = (gw.running.gateway.app.routes as { method: string; path: string }[])
    .map((r) => ({
      method: r.method.toUpperCase() === "ALL" ? "POST" : r.method.toUpperCase(),
      path: r.path,
    }))
    .filter((r) => r.method !== "GET" && r.method !== "HEAD" && r.path !== "*");
  expect(routes.length).toBeGreaterThan(20);
  const failures: string[] = [];
  for (const r of routes) {
    const path = r.path.replace(/:[^/]+/g, "does-not-exist");
    for (const [name, type, body] of bodies) {
      const res = await fetch(`${gw.url}${path}`, {
        method: r.method,
        headers: { "content-type": type },
        body,
      });
      const text = await res.text();
      if (res.status >= 500)
        failures.push(`${r.method} ${path} (${name}) → ${res.status} ${text.slice(0, 120)}`);
      else if (res.status >= 400) {
        let ok = false;
        try {
          const j = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
          ok = typeof j.error?.code === "string" && typeof j.error?.message === "string";
        } catch {}
        if (!ok)
          failures.push(
            `${r.method} ${path} (${name}) → ${res.status} not an error envelope: ${text.slice(0, 120)}`,
          );
      }
    }
  }
  expect(failures).toEqual([]);
  expect((await fetch(`${gw.url}/health`)).status).toBe(200);
});

test("GET routes with odd query strings answer 4xx or 2xx, never 5xx", async () => {
  const routes = (gw.running.gateway.app.routes as { method: string; path: string }[]).filter(
    (r) => r.method === "GET" && r.path.startsWith("/api/"),
  );
  const failures: string[] = [];
  for (const r of routes) {
    const path = r.path.replace(/:[^/]+/g, "does-not-exist");
    for (const q of [
      "?limit=-5&offset=abc",
      "?since=yesterday&until=%ZZ",
      "?flowId=&accountId[]=1",
      "?limit=99999999999",
    ]) {
      const res = await fetch(`${gw.url}${path}${q}`);
      if (res.status >= 500)
        failures.push(`GET ${path}${q} → ${res.status} ${(await res.text()).slice(0, 120)}`);
    }
  }
  expect(failures).toEqual([]);
});
