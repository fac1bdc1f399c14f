import { afterAll, beforeAll, expect, test } from "bun:test";
import OpenAI from "openai";
import { jsonInit } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

// The OpenAI SDK sends its apiKey as `Authorization: Bearer`; the proxy routes arrive on another
// branch, so this checks admission and /v1/usage as the SDK sees them.
let gw: TestGateway;
let key: string;
let keyId: string;
beforeAll(async () => {
  gw = await startGateway();
  await fetch(`${gw.url}/api/settings/access`, jsonInit("PUT", { apiKeyAuthEnabled: true }));
  const res = await fetch(
    `${gw.url}/api/api-keys`,
    jsonInit("POST", {
      name: "sdk",
      limits: [{ limitType: "total_tokens", limitWindow: "daily", maxValue: 1000 }],
    }),
  );
  ({ key, id: keyId } = (await res.json()) as { key: string; id: string });
});
afterAll(async () => {
  await gw.stop();
});

const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0 });

test("the SDK's key is accepted and /v1/usage answers its limits", async () => {
  const usage = (await client(key).get("/usage")) as { api_key_id: string; limits: { max_value: number }[] };
  expect(usage.api_key_id).toBe(keyId);
  expect(usage.limits[0]?.max_value).toBe(1000);
});

test("a wrong key surfaces as the SDK's AuthenticationError with code invalid_api_key", async () => {
  const err = await client("sk-clb-wrong")
    .models.list()
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key");
});

test("a deactivated key surfaces as AuthenticationError", async () => {
  await fetch(`${gw.url}/api/api-keys/${keyId}`, jsonInit("PATCH", { isActive: false }));
  const err = await client(key)
    .get("/usage")
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  await fetch(`${gw.url}/api/api-keys/${keyId}`, jsonInit("PATCH", { isActive: true }));
});
