/**
 * Issue acceptance, end to end with the real `openai` SDK through the proxy: an API key limited to
 * 1000 total tokens per day works until the fake backend's usage reaches the limit, then gets 429;
 * a deactivated key gets 401; a model outside the key's list gets 403.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import OpenAI from "openai";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "k1" }] });
  // Every answer reports 300 input + 100 output tokens.
  env.fake.always("chatgpt-k1", { kind: "text", text: "counted", usage: { input: 300, output: 100 } });
  // Keys are required from every client for this test.
  await fetch(`${env.gw.url}/api/settings/access`, json("PUT", { apiKeyAuthEnabled: true }));
});
afterAll(async () => {
  await env.stop();
});

async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const res = await fetch(`${env.gw.url}/api/api-keys`, json("POST", body));
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${env.gw.url}/v1`, maxRetries: 0 });
const loggedRequests = async (keyId: string) =>
  (await env.db.selectFrom("request_logs").select("id").where("api_key_id", "=", keyId).execute()).length;

test("a key limited to 1000 total tokens a day works until its usage reaches the limit, then gets 429", async () => {
  const { id, key } = await createKey({
    name: "daily-1000",
    limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
  });
  const sdk = client(key);
  // 400 tokens each: after 3 answers the key has used 1200 >= 1000.
  for (let i = 1; i <= 3; i++) {
    const r = await sdk.chat.completions.create({
      model: "gpt-5.2",
      messages: [{ role: "user", content: `q${i}` }],
    });
    expect(r.choices[0]?.message.content).toBe("counted");
    expect(r.usage?.total_tokens).toBe(400);
    // Usage is counted from the request logs, which are written in batches: wait for this one.
    expect(await eventually(async () => (await loggedRequests(id)) === i)).toBe(true);
  }
  const err = await sdk.chat.completions
    .create({ model: "gpt-5.2", messages: [{ role: "user", content: "one more" }] })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(OpenAI.RateLimitError);
  const e = err as InstanceType<typeof OpenAI.RateLimitError>;
  expect(e.status).toBe(429);
  expect(e.code).toBe("rate_limit_exceeded");
  expect(e.message).toMatch(/reset/i);
  expect(e.headers?.get("retry-after")).toMatch(/^\d+$/);
  // The refused request never reached the upstream.
  expect(env.fake.requests.length).toBe(3);
  // GET /v1/usage tells the key its own usage and limits.
  const usage = await fetch(`${env.gw.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
  expect(usage.status).toBe(200);
  expect(JSON.stringify(await usage.json())).toContain("1200");
});

test("a deactivated key gets 401", async () => {
  const { id, key } = await createKey({ name: "to-deactivate" });
  const sdk = client(key);
  expect((await sdk.responses.create({ model: "gpt-5.2", input: "hi" })).output_text).toBe("counted");
  const patched = await fetch(`${env.gw.url}/api/api-keys/${id}`, json("PATCH", { isActive: false }));
  expect(patched.status).toBe(200);
  const err = await sdk.responses.create({ model: "gpt-5.2", input: "hi" }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key");
});

test("a model outside the key's allow-list gets 403; an allowed one works", async () => {
  const { key } = await createKey({ name: "only-codex", allowedModels: ["gpt-5.2-codex"] });
  const sdk = client(key);
  const err = await sdk.chat.completions
    .create({ model: "gpt-5.2", messages: [{ role: "user", content: "hi" }] })
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
  expect((err as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe("model_not_allowed");
  const ok = await sdk.chat.completions.create({
    model: "gpt-5.2-codex",
    messages: [{ role: "user", content: "hi" }],
  });
  expect(ok.choices[0]?.message.content).toBe("counted");
});

test("a wrong key gets 401 without reaching the upstream", async () => {
  const before = env.fake.requests.length;
  const err = await client("sk-clb-wrongwrongwrongwrongwrongwrongwrongwrongwro")
    .models.list()
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  expect(env.fake.requests.length).toBe(before);
});

test("a limit lowered through the admin API applies to the very next request (no stale cached state)", async () => {
  const { id, key } = await createKey({
    name: "lowered",
    limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 100_000 }],
  });
  const sdk = client(key);
  expect((await sdk.responses.create({ model: "gpt-5.2", input: "hi" })).output_text).toBe("counted");
  expect(await eventually(async () => (await loggedRequests(id)) === 1)).toBe(true);
  const patched = await fetch(
    `${env.gw.url}/api/api-keys/${id}`,
    json("PATCH", { limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 300 }] }),
  );
  expect(patched.status).toBe(200);
  const err = await sdk.responses.create({ model: "gpt-5.2", input: "hi" }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.RateLimitError);
});
