/**
 * `previous_response_id` goes to the account that produced that response, also when the client
 * continues at once, before the first answer's request-log row has been written.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { fakeCodex } from "../fakes/codex.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({
    accounts: [{ id: "p1" }, { id: "p2" }],
    // This test is about routing, not the backend: a fake that keeps every response lets HTTP continue.
    fake: fakeCodex(undefined, { storesResponses: true }),
    // Round robin would move the second request to the other account; the log batch stays queued.
    env: { CODEX_LB_ROUTING_STRATEGY: "round_robin", CODEX_LB_REQUEST_LOG_FLUSH_MS: "60000" },
  });
});
afterAll(async () => {
  await env.stop();
});

const ask = (body: Record<string, unknown>) =>
  fetch(`${env.gw.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi", ...body }),
  });

test("a continuation goes to the account that answered, before its log row is written", async () => {
  const first = await ask({});
  expect(first.status).toBe(200);
  const { id } = (await first.json()) as { id: string };
  const owner = env.fake.requests[0]!.chatgptAccountId;
  expect(env.gw.running.gateway.requestLogs.pending).toBeGreaterThan(0);
  for (let i = 0; i < 3; i++) {
    expect((await ask({ previous_response_id: id })).status).toBe(200);
    expect(env.fake.requests.at(-1)!.chatgptAccountId).toBe(owner);
  }
  // Without the continuation, round robin moves on.
  expect((await ask({})).status).toBe(200);
  expect(env.fake.requests.at(-1)!.chatgptAccountId).not.toBe(owner);
});

test("a continuation whose account is unusable gets a clear error, not another account's answer", async () => {
  const first = await ask({});
  const { id } = (await first.json()) as { id: string };
  const owner = env.fake.requests.at(-1)!.chatgptAccountId!.replace("chatgpt-", "");
  await env.gw.running.gateway.services.apply([{ type: "account.pause", accountId: owner }], {
    source: "test",
  });
  const before = env.fake.requests.length;
  const res = await ask({ previous_response_id: id });
  expect(res.status).toBe(503);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe("account_unavailable");
  expect(env.fake.requests.length).toBe(before);
});
