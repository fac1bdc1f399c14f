/**
 * The OpenAPI document at /docs/json: 0 errors from @apidevtools/swagger-parser, OpenAPI 3.1, and
 * every operation documented (summary, description, security, success schema with an example,
 * error answers), the proxy endpoints included.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { startGateway, type TestGateway } from "../support/gateway.ts";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON.
type Json = any;
let gw: TestGateway;
let doc: Json;
const METHODS = ["get", "put", "post", "delete", "patch"];
const ops = () =>
  Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({ key: `${m.toUpperCase()} ${path}`, path, op: item[m] })),
  );

beforeAll(async () => {
  gw = await startGateway();
  doc = await (await fetch(`${gw.url}/docs/json`)).json();
});
afterAll(async () => {
  await gw.stop();
});

describe("the OpenAPI document", () => {
  test("is valid: swagger-parser reports 0 errors", async () => {
    let errors: unknown[] = [];
    try {
      await SwaggerParser.validate(structuredClone(doc));
    } catch (e) {
      errors = (e as { details?: unknown[] }).details ?? [String(e)];
    }
    expect(errors).toEqual([]);
    expect(doc.openapi).toBe("3.1.0");
  });

  test("every operation has a summary, a description, a security requirement and error answers", () => {
    expect(ops().length).toBeGreaterThan(50);
    const missing: string[] = [];
    for (const { key, path, op } of ops()) {
      if (!op.summary) missing.push(`${key}: summary`);
      if (!op.description) missing.push(`${key}: description`);
      if (!Array.isArray(op.security)) missing.push(`${key}: security`);
      const codes = Object.keys(op.responses ?? {});
      if (!codes.some((c) => Number(c) >= 400 && Number(c) < 600)) missing.push(`${key}: error answers`);
      if (!path.startsWith("/health") && !codes.includes("500")) missing.push(`${key}: 500`);
    }
    expect(missing).toEqual([]);
  });

  test("every success answer with a body has a schema and an example; request bodies too", () => {
    const missing: string[] = [];
    for (const { key, op } of ops()) {
      const ok = Object.entries<Json>(op.responses).filter(([c]) => Number(c) >= 200 && Number(c) < 300);
      for (const [code, r] of ok) {
        if (!r.content) continue;
        for (const [type, media] of Object.entries<Json>(r.content)) {
          if (!media.schema) missing.push(`${key} ${code} ${type}: schema`);
          if (media.example === undefined && media.examples === undefined)
            missing.push(`${key} ${code} ${type}: example`);
        }
      }
      for (const [type, media] of Object.entries<Json>(op.requestBody?.content ?? {})) {
        if (!media.schema) missing.push(`${key} body ${type}: schema`);
        if (media.example === undefined && media.examples === undefined)
          missing.push(`${key} body ${type}: example`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("the proxy endpoints have request and response schemas and the API-key scheme", () => {
    const byKey = Object.fromEntries(ops().map((o) => [o.key, o.op]));
    for (const key of [
      "POST /v1/responses",
      "POST /v1/chat/completions",
      "POST /backend-api/codex/responses",
    ]) {
      expect(byKey[key].requestBody.content["application/json"].schema.required).toContain("model");
      expect(Object.keys(byKey[key].responses["200"].content)).toContain("text/event-stream");
      expect(byKey[key].security).toContainEqual({ apiKey: [] });
      expect(byKey[key].responses["401"].$ref).toBe("#/components/responses/OpenAI401");
    }
    expect(
      byKey["GET /v1/models"].responses["200"].content["application/json"].schema.properties.data.type,
    ).toBe("array");
    expect(byKey["GET /api/accounts"].security).toContainEqual({ adminSession: [] });
    expect(byKey["GET /api/accounts"].responses["401"].$ref).toBe("#/components/responses/Admin401");
    expect(byKey["GET /health"].security).toEqual([]);
    expect(byKey["GET /metrics"].security).toContainEqual({ metricsToken: [] });
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      "adminSession",
      "apiKey",
      "metricsToken",
    ]);
    expect(doc.components.securitySchemes.adminSession).toMatchObject({ type: "apiKey", in: "cookie" });
  });
});

test("a validation error lists the allowed values", async () => {
  const res = await fetch(`${gw.url}/api/request-logs?status=nope`);
  expect(res.status).toBe(400);
  expect(await res.json()).toEqual({
    error: {
      code: "validation_error",
      message: `Invalid query field 'status': must be one of "success", "error", "cancelled"`,
      param: "status",
    },
  });
});
