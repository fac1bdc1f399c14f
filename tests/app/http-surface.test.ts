import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.stop();
});

describe("HTTP surface", () => {
  test("GET /health answers ok", async () => {
    const res = await fetch(`${gw.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("GET /health/ready is 503 no_usable_account while no account is configured", async () => {
    const res = await fetch(`${gw.url}/health/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      status: "unavailable",
      reason: "no_usable_account",
      accounts: { total: 0, usable: 0 },
    });
  });

  test("x-request-id is kept from the client and appears in the log line", async () => {
    const res = await fetch(`${gw.url}/api/plugins`, { headers: { "x-request-id": "req-test-42" } });
    expect(res.headers.get("x-request-id")).toBe("req-test-42");
    await Bun.sleep(20);
    expect(gw.logs().some((l) => l.requestId === "req-test-42" && l.path === "/api/plugins")).toBe(true);
  });

  test("a request without an id gets a generated one", async () => {
    const res = await fetch(`${gw.url}/health`);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("unknown routes get a JSON 404 in the envelope of their family", async () => {
    const admin = await fetch(`${gw.url}/api/nothing-here`);
    expect(admin.status).toBe(404);
    expect(await admin.json()).toEqual({
      error: { code: "not_found", message: "No route for GET /api/nothing-here" },
    });
    const openai = await fetch(`${gw.url}/v1/nothing-here`, { method: "POST" });
    expect(openai.status).toBe(404);
    const body = (await openai.json()) as { error: Record<string, unknown> };
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.code).toBe("not_found");
  });

  test("OpenAPI 3 document titled codex-lb with the package version", async () => {
    const res = await fetch(`${gw.url}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe("codex-lb");
    expect(doc.info.version).toBe((await Bun.file("package.json").json()).version);
    expect(Object.keys(doc.paths)).toContain("/health");
  });

  test("Swagger UI is served at /docs", async () => {
    const res = await fetch(`${gw.url}/docs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("swagger");
  });

  test("a body over CODEX_LB_MAX_BODY_BYTES is refused with 413 in the OpenAI envelope", async () => {
    const small = await startGateway({ env: { CODEX_LB_MAX_BODY_BYTES: "2048" } });
    try {
      const res = await fetch(`${small.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "x", input: "y".repeat(5000) }),
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string; type: string } }).error).toMatchObject({
        code: "payload_too_large",
        type: "invalid_request_error",
      });
      const admin = await fetch(`${small.url}/api/plugins`, { method: "POST", body: "z".repeat(5000) });
      expect(admin.status).toBe(413);
      expect(((await admin.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    } finally {
      await small.stop();
    }
  });
});

test("GET /health/ready is 503 when the store does not answer", async () => {
  const other = await startGateway();
  try {
    await other.running.store.close();
    const res = await fetch(`${other.url}/health/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "unavailable", reason: "store_unreachable", accounts: null });
    expect((await fetch(`${other.url}/health`)).status).toBe(200);
  } finally {
    await other.stop();
  }
});
