import { afterEach, expect, test } from "bun:test";
import { FALLBACK_MODELS } from "../../src/proxy/models.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv | null = null;
afterEach(async () => {
  await env?.stop();
  env = null;
});

const ids = async (e: ProxyEnv) =>
  (
    (await (await fetch(`${e.gw.url}/v1/models`)).json()) as { object: string; data: { id: string }[] }
  ).data.map((m) => m.id);

test("the upstream list is cached: one upstream call for many requests", async () => {
  env = await startProxyEnv({ accounts: [{ id: "m1" }] });
  for (let i = 0; i < 3; i++) expect(await ids(env)).toEqual(["gpt-5.2", "gpt-5.2-codex"]);
  const calls = env.upstream.calls("GET /backend-api/codex/models");
  expect(calls.length).toBe(1);
  expect(calls[0]!.headers.get("authorization")).toBe(`Bearer ${env.tokens.get("m1")!.accessToken}`);
  expect(calls[0]!.headers.get("chatgpt-account-id")).toBe("chatgpt-m1");
});

test("the built-in list answers when the upstream cannot be reached or no account is usable", async () => {
  env = await startProxyEnv({ accounts: [{ id: "m1" }] });
  env.fake.modelsStatus = 500;
  expect(await ids(env)).toEqual(FALLBACK_MODELS.map((m) => m.slug as string));
  const empty = await startProxyEnv();
  try {
    expect(await ids(empty)).toEqual(FALLBACK_MODELS.map((m) => m.slug as string));
    const codex = (await (await fetch(`${empty.gw.url}/backend-api/codex/models`)).json()) as {
      models: unknown[];
    };
    expect(codex.models.length).toBe(FALLBACK_MODELS.length);
  } finally {
    await empty.stop();
  }
});

test("a fallback is never silent: logged with its reason and marked in the answer", async () => {
  env = await startProxyEnv({ accounts: [{ id: "m1" }] });
  const ok = await fetch(`${env.gw.url}/v1/models`);
  expect(ok.headers.get("x-codex-lb-models-source")).toBe("upstream");
  const empty = await startProxyEnv();
  try {
    empty.fake.modelsStatus = 500;
    for (const path of ["/v1/models", "/v1/models/gpt-5.4", "/backend-api/codex/models"]) {
      const res = await fetch(`${empty.gw.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-codex-lb-models-source")).toBe("fallback");
    }
    const lines = empty.gw.logs().filter((l) => l.msg === "model list: serving the built-in fallback");
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]!.reason).toBe("no usable account");
  } finally {
    await empty.stop();
  }
  const down = await startProxyEnv({ accounts: [{ id: "m2" }] });
  try {
    down.fake.modelsStatus = 503;
    await fetch(`${down.gw.url}/v1/models`);
    expect(down.gw.logs().some((l) => l.reason === "upstream answered HTTP 503")).toBe(true);
  } finally {
    await down.stop();
  }
});
