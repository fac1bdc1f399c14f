/**
 * The fuzz walk shared by the bounded test (tests/fuzz/openapi-fuzz.test.ts) and the larger run
 * (scripts/fuzz.ts): every operation of the gateway's own OpenAPI document (`/docs/json`) is sent
 * property-generated hostile input — malformed and wrongly typed bodies, edge numbers, bad ids, odd
 * query strings, headers and cookies — through the in-process entry, and every answer must be a
 * non-5xx JSON error envelope (or a success).
 *
 * @module
 */
import fc from "fast-check";
import type { TestGateway } from "../support/gateway.ts";

export interface Operation {
  readonly method: string;
  readonly path: string;
}

/** The operations of `/docs/json`, minus the ones that only stream forever or open browsers. */
export async function operationsOf(gw: TestGateway): Promise<Operation[]> {
  const doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    if (path === "/api/events") continue; // a live SSE stream: never ends by design
    if (path === "/health/ready") continue; // readiness answers 503 by design while no account is usable
    for (const m of Object.keys(methods)) {
      const method = m.toUpperCase();
      if (["GET", "POST", "PUT", "PATCH", "DELETE"].includes(method)) ops.push({ method, path });
    }
  }
  return ops;
}

const edgeNumber = fc.constantFrom(
  "0",
  "-1",
  "1.5",
  "1e20",
  "1e400",
  "NaN",
  "-0",
  "9007199254740993",
  "0x10",
  "",
  "null",
);
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("%", "%E0%A4%A", "../../etc/passwd", "\u0000", "a".repeat(300), "<script>", "🙂"),
);
const bodyArb = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .dictionary(
      fc.constantFrom(
        "model",
        "input",
        "name",
        "limits",
        "entry",
        "password",
        "newPassword",
        "routingPolicy",
        "apiKeyAuthEnabled",
        "stream",
        "messages",
        "entries",
        "code",
      ),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom("", "{", "[]", "null", '{"a":', "\u0000\u0001"),
);
const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  null,
);

export const requestArb = fc.record({
  id: oddString,
  query: fc.array(
    fc.tuple(
      fc.constantFrom("limit", "offset", "before", "since", "until", "entry", "accountId", "status", "model"),
      fc.oneof(edgeNumber, oddString),
    ),
    { maxLength: 3 },
  ),
  body: bodyArb,
  contentType,
  cookie: fc.option(
    fc.oneof(
      oddString.map((s) => `codex_lb_session=${s}`),
      oddString,
    ),
    { nil: null },
  ),
  authorization: fc.option(
    fc.oneof(
      oddString.map((s) => `Bearer ${s}`),
      oddString,
    ),
    { nil: null },
  ),
  requestId: fc.option(oddString, { nil: null }),
  /** Mostly this machine (the admin API is open to it before a password exists), sometimes remote. */
  peer: fc.constantFrom("127.0.0.1", "127.0.0.1", "127.0.0.1", "203.0.113.77"),
});

export type FuzzRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

/** Builds the request for one operation; header values the Fetch API refuses are left out. */
export function buildRequest(gw: TestGateway, op: Operation, r: FuzzRequest): Request {
  const path = op.path.replace(/\{[^}]+\}|:[^/]+/g, () => encodeURIComponent(r.id) || "x");
  const qs = new URLSearchParams(r.query.map(([k, v]) => [k, v]));
  const url = `${gw.url}${path}${qs.size > 0 ? `?${qs}` : ""}`;
  const headers = new Headers();
  const trySet = (k: string, v: string | null) => {
    if (v === null) return;
    try {
      headers.set(k, v);
    } catch {
      // not a valid header value: a real client could not send it either
    }
  };
  trySet("content-type", r.contentType);
  trySet("cookie", r.cookie);
  trySet("authorization", r.authorization);
  trySet("x-request-id", r.requestId);
  const withBody = op.method !== "GET" && op.method !== "DELETE";
  return new Request(url, { method: op.method, headers, ...(withBody ? { body: r.body } : {}) });
}

/** One answer's problem, or null when it is acceptable. */
export async function problemOf(op: Operation, res: Response): Promise<string | null> {
  const text = await res.text();
  if (res.status >= 500) return `${op.method} ${op.path} → ${res.status} ${text.slice(0, 200)}`;
  if (res.status >= 400) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return `${op.method} ${op.path} → ${res.status} non-JSON error: ${text.slice(0, 120)}`;
    }
    const err = (body as { error?: { code?: unknown; message?: unknown } }).error;
    if (!err || typeof err.code !== "string" || typeof err.message !== "string")
      return `${op.method} ${op.path} → ${res.status} not an error envelope: ${text.slice(0, 120)}`;
  }
  return null;
}

/** Runs `runsPerOperation` generated requests against every operation; returns the problems found. */
export async function fuzzAll(
  gw: TestGateway,
  runsPerOperation: number,
  seed?: number,
): Promise<{ operations: number; requests: number; problems: string[] }> {
  const ops = await operationsOf(gw);
  const problems: string[] = [];
  let requests = 0;
  for (const op of ops) {
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        requests++;
        const res = await gw.running.gateway.fetch(buildRequest(gw, op, r), r.peer);
        const p = await problemOf(op, res);
        if (p) problems.push(p);
        return true;
      }),
      { numRuns: runsPerOperation, ...(seed !== undefined ? { seed } : {}) },
    );
  }
  return { operations: ops.length, requests, problems };
}
