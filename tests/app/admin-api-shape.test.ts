/**
 * One time format and one paging shape across the admin API, read from the OpenAPI document (so a
 * new route is held to it too): every time in an answer is epoch milliseconds (an integer, never a
 * date string), and every paged listing takes `limit` and `offset` and answers
 * `{items, total, limit, offset}`. The pages are then walked over HTTP.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON.
type Json = any;
let gw: TestGateway;
let doc: Json;

beforeAll(async () => {
  gw = await startGateway();
  doc = await (await fetch(`${gw.url}/docs/json`)).json();
});
afterAll(async () => {
  await gw.stop();
});

const deref = (s: Json): Json => (s?.$ref ? deref(doc.components.schemas[s.$ref.split("/").pop()]) : s);
const adminOps = () =>
  Object.entries<Json>(doc.paths)
    .filter(([path]) => path.startsWith("/api/"))
    .flatMap(([path, item]) =>
      ["get", "post", "put", "patch", "delete"]
        .filter((m) => item[m])
        .map((m) => ({ key: `${m.toUpperCase()} ${path}`, op: item[m] })),
    );
const TIME_FIELD = /(At|Until)$|^(at|since|until)$/;

/** `[path, schema]` of every property named like a time, anywhere in `schema`. */
function timeFields(schema: Json, path: string, out: [string, Json][]): [string, Json][] {
  const s = deref(schema);
  if (!s || typeof s !== "object") return out;
  for (const [k, v] of Object.entries<Json>(s.properties ?? {})) {
    if (TIME_FIELD.test(k)) out.push([`${path}.${k}`, deref(v)]);
    timeFields(v, `${path}.${k}`, out);
  }
  if (s.items) timeFields(s.items, `${path}[]`, out);
  for (const k of ["anyOf", "oneOf", "allOf"]) for (const x of s[k] ?? []) timeFields(x, path, out);
  return out;
}
const types = (s: Json): string[] =>
  s.anyOf || s.oneOf ? (s.anyOf ?? s.oneOf).flatMap((x: Json) => types(deref(x))) : [s.type].flat();

describe("the admin API", () => {
  test("every time in an answer is epoch milliseconds (integer), never a date string", () => {
    const found: string[] = [];
    for (const { key, op } of adminOps()) {
      const schema = op.responses?.["200"]?.content?.["application/json"]?.schema;
      for (const [path, s] of timeFields(schema, key, [])) {
        found.push(path);
        expect({ path, types: types(s).filter((t) => t !== "null") }).toEqual({ path, types: ["integer"] });
      }
    }
    // The check saw the request log's time and the others.
    expect(found).toContain("GET /api/request-logs.items[].requestedAt");
    expect(found).toContain("GET /api/audit-logs.items[].at");
    expect(found.length).toBeGreaterThan(20);
  });

  test("every paged listing takes limit and offset and answers {items, total, limit, offset}", () => {
    const paged: string[] = [];
    for (const { key, op } of adminOps()) {
      const query = (op.parameters ?? []).filter((p: Json) => p.in === "query").map((p: Json) => p.name);
      const schema = deref(op.responses?.["200"]?.content?.["application/json"]?.schema);
      const isPage = schema?.type === "object" && "items" in (schema.properties ?? {});
      if (!query.includes("limit") && !isPage) continue;
      paged.push(key);
      expect({ key, limit: query.includes("limit"), offset: query.includes("offset") }).toEqual({
        key,
        limit: true,
        offset: true,
      });
      expect({ key, fields: Object.keys(schema.properties).sort() }).toEqual({
        key,
        fields: ["items", "limit", "offset", "total"],
      });
      expect(schema.required?.slice().sort()).toEqual(["items", "limit", "offset", "total"]);
      expect(query).not.toContain("before");
    }
    expect(paged.sort()).toEqual([
      "GET /api/accounts/{id}/events",
      "GET /api/audit-logs",
      "GET /api/request-logs",
      "GET /api/sticky-sessions",
    ]);
  });

  test("pages over HTTP: limit and offset walk the audit trail without overlap; total counts all", async () => {
    // Three audited changes.
    for (const entry of ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) {
      const r = await fetch(`${gw.url}/api/firewall/entries`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ entry }),
      });
      expect(r.status).toBe(201);
    }
    const page = async (limit: number, offset: number) =>
      (await (await fetch(`${gw.url}/api/audit-logs?limit=${limit}&offset=${offset}`)).json()) as {
        items: { id: number; at: number }[];
        total: number;
        limit: number;
        offset: number;
      };
    const first = await page(2, 0);
    const second = await page(2, 2);
    expect(first.total).toBeGreaterThanOrEqual(3);
    expect(second.total).toBe(first.total);
    expect([first.limit, first.offset, second.offset]).toEqual([2, 0, 2]);
    expect(first.items).toHaveLength(2);
    const ids = [...first.items, ...second.items].map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(ids.slice().sort((a, b) => b - a));
    for (const i of first.items) expect(Number.isInteger(i.at)).toBe(true);
  });
});
