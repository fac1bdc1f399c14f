/**
 * An API key's token limit holds across three replicas on one PostgreSQL database: hammered
 * through all three at once, a 1,000-token daily limit overshoots by at most one request's worth
 * (the reservations of src/access/api-keys/reservations.ts lock the key's row, which on PostgreSQL
 * serialises every replica's reservations of that key).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { authJsonOf, identity } from "../support/accounts.ts";
import { startCluster, type TestCluster } from "../support/cluster.ts";

let c: TestCluster;
const PER_REQUEST = { input: 120, output: 80 }; // 200 tokens a request
beforeAll(async () => {
  c = await startCluster({ replicas: 3 });
  const who = identity("limits");
  const res = await fetch(`${c.replicas[0]?.url}/api/accounts/import`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(authJsonOf(c.auth.issue(who))),
  });
  expect(res.status).toBe(200);
  c.fake.always(who.chatgptAccountId, { kind: "text", text: "counted", usage: PER_REQUEST });
}, 90_000);
afterAll(async () => {
  await c?.stop();
}, 30_000);

test("a 1,000-token daily limit hammered through all three replicas overshoots by at most one request", async () => {
  const created = await fetch(`${c.replicas[0]?.url}/api/api-keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name: "hammered",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
    }),
  });
  expect(created.status).toBe(201);
  const { id, key } = (await created.json()) as { id: string; key: string };
  const ask = (i: number) =>
    fetch(`${c.replicas[i % 3]?.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
    }).then((r) => r.status);
  let served = 0;
  let lastRound: number[] = [];
  for (let round = 0; round < 12; round++) {
    lastRound = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(i)));
    for (const s of lastRound) expect([200, 429]).toContain(s);
    served += lastRound.filter((s) => s === 200).length;
    if (lastRound.every((s) => s === 429)) break;
  }
  expect(lastRound.every((s) => s === 429)).toBe(true);
  const used = served * (PER_REQUEST.input + PER_REQUEST.output);
  expect(used).toBeGreaterThanOrEqual(1000);
  expect(used).toBeLessThanOrEqual(1000 + PER_REQUEST.input + PER_REQUEST.output);
  // What the gateway counted agrees (log rows written by all three replicas).
  await Bun.sleep(300);
  const view = (await (await fetch(`${c.replicas[2]?.url}/api/api-keys/${id}`)).json()) as {
    limits: { currentValue: number }[];
  };
  expect(view.limits[0]?.currentValue).toBe(used);
}, 60_000);
