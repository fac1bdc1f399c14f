/**
 * API-key limits under a concurrent burst: an estimate is reserved (durably, in the store) before a
 * request is forwarded and settled with the real usage, so a burst overshoots a limit by at most one
 * request's worth. On the old main a 100-token key served every one of 500 concurrent requests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LimitReservations } from "../../src/access/api-keys/reservations.ts";
import { jsonInit } from "../support/admin.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

const PER_REQUEST = { input: 10, output: 20 }; // 30 tokens a request, as the fake reports it
const LIMIT = 100;

let env: ProxyEnv;
let key: string;
let keyId: string;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "a1" }, { id: "a2" }] });
  env.fake.always("chatgpt-a1", { kind: "text", text: "ok", usage: PER_REQUEST });
  env.fake.always("chatgpt-a2", { kind: "text", text: "ok", usage: PER_REQUEST });
  const res = await fetch(
    `${env.gw.url}/api/api-keys`,
    jsonInit("POST", {
      name: "tiny",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: LIMIT }],
    }),
  );
  ({ key, id: keyId } = (await res.json()) as { key: string; id: string });
  await fetch(`${env.gw.url}/api/settings/access`, jsonInit("PUT", { apiKeyAuthEnabled: true }));
});
afterAll(async () => {
  await env.stop();
});

const call = (body: Record<string, unknown> = {}) =>
  fetch(`${env.gw.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "gpt-5.4", input: "hi", ...body }),
  });

async function usedTokens(): Promise<number> {
  await env.gw.running.gateway.requestLogs.flush();
  const rows = await env.db
    .selectFrom("request_logs")
    .select(["input_tokens", "output_tokens"])
    .where("api_key_id", "=", keyId)
    .execute();
  return rows.reduce((n, r) => n + (r.input_tokens ?? 0) + (r.output_tokens ?? 0), 0);
}

describe("a 100-token key under a burst of 500 concurrent requests", () => {
  test("overshoot is at most one request's worth, and the rest get 429 with Retry-After", async () => {
    const answers = await Promise.all(Array.from({ length: 500 }, () => call({ max_output_tokens: 20 })));
    const served = answers.filter((r) => r.status === 200).length;
    const refused = answers.filter((r) => r.status === 429);
    expect(served + refused.length).toBe(500);
    expect(served).toBeGreaterThanOrEqual(1);
    for (const r of refused.slice(0, 5)) {
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("rate_limit_exceeded");
    }
    // Then one at a time until the limit is reached (by the logged usage: a refusal alone may come
    // while the burst's reservations are still being cleared).
    for (let i = 0; i < 10 && (await usedTokens()) < LIMIT; i++) await call({ max_output_tokens: 20 });
    const used = await usedTokens();
    console.log(`burst: served ${served}, refused ${refused.length}; tokens used ${used} of ${LIMIT}`);
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(LIMIT + PER_REQUEST.input + PER_REQUEST.output);
    expect((await call()).status).toBe(429);
    // Every reservation is gone once its log row is written: the hour buckets count the usage.
    const left = await env.db.selectFrom("api_key_reservations").selectAll().execute();
    expect(left).toHaveLength(0);
  });
});

describe("reservations are rows in the store", () => {
  test("a settled reservation whose log row was never written still counts (no under-count after a crash)", async () => {
    const db = env.db;
    const log = { warn: () => {}, info: () => {} };
    const created = await (
      await fetch(
        `${env.gw.url}/api/api-keys`,
        jsonInit("POST", {
          name: "crashy",
          limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
        }),
      )
    ).json();
    const { id } = created as { id: string };
    const keyRow = {
      id,
      createdAt: Date.now(),
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
    } as const;
    const now = Date.now();
    // A process reserves and settles 990 tokens, then dies before writing the log row.
    const first = new LimitReservations(db, log);
    const hold = await first.hold(
      keyRow,
      { requestId: "r1", model: "gpt-5.4", payload: {}, body: { max_output_tokens: 10 } },
      now,
    );
    expect(hold).not.toBeNull();
    await hold!.settle({
      requested_at: now,
      request_id: "r1",
      api_key_id: id,
      model: "gpt-5.4",
      endpoint: "/v1/responses",
      status: "success",
      http_status: 200,
      input_tokens: 490,
      output_tokens: 500,
    } as never);
    // A new process (a fresh LimitReservations, nothing in memory) sees the 990 tokens.
    const second = new LimitReservations(db, log);
    await expect(
      second.hold(
        keyRow,
        { requestId: "r2", model: "gpt-5.4", payload: {}, body: { max_output_tokens: 5 } },
        now + 1,
      ),
    ).resolves.not.toBeNull();
    await expect(
      second.hold(
        keyRow,
        { requestId: "r3", model: "gpt-5.4", payload: {}, body: { max_output_tokens: 5 } },
        now + 2,
      ),
    ).rejects.toThrow(/limit of 1000/);
  });
});
