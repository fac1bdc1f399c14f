/**
 * The exact header list each proxied route sends upstream, as the fake upstream receives it on the
 * wire (names and values; the order is not pinned): the Codex route for Codex CLI and for another
 * client, `/v1/responses` and `/v1/chat/completions`. Values that differ per run (the account's
 * token and installation id, the fake's port, the body's length) come from where they are made.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CODEX_CLIENT_VERSION, CODEX_PERSONA_USER_AGENT } from "../../src/upstream/headers.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
const ACC = "chatgpt-h1";
let installationId: string;
/** A gateway key: clients behind a forwarding header are remote, and remote clients need one. */
let key: string;

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "h1", chatgptAccountId: ACC }] });
  const row = await env.db
    .selectFrom("accounts")
    .select("codex_installation_id")
    .where("id", "=", "h1")
    .executeTakeFirstOrThrow();
  installationId = row.codex_installation_id;
  await fetch(`${env.gw.url}/api/settings/access`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apiKeyAuthEnabled: true }),
  });
  const created = await fetch(`${env.gw.url}/api/api-keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "headers-test" }),
  });
  key = ((await created.json()) as { key: string }).key;
});
afterAll(async () => {
  await env.stop();
});

/** Sends one request and returns the headers and raw body of the upstream call it made. */
async function upstreamCall(path: string, headers: Record<string, string>, body: unknown) {
  env.fake.script(ACC, { kind: "text", text: "ok" });
  const before = env.upstream.calls("POST /backend-api/codex/responses").length;
  const res = await fetch(`${env.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  await res.text();
  const calls = env.upstream.calls("POST /backend-api/codex/responses");
  expect(calls.length).toBe(before + 1);
  const call = calls.at(-1)!;
  return {
    headers: Object.fromEntries([...call.headers].sort(([a], [b]) => a.localeCompare(b))),
    body: call.body,
  };
}

/** What every upstream call carries whatever the client sent (Bun's fetch adds host, connection, accept-encoding). */
function common(requestId: string, body: string): Record<string, string> {
  return {
    accept: "text/event-stream",
    "accept-encoding": "gzip, deflate, br, zstd",
    authorization: `Bearer ${env.tokens.get("h1")!.accessToken}`,
    "chatgpt-account-id": ACC,
    connection: "keep-alive",
    "content-length": String(Buffer.byteLength(body)),
    "content-type": "application/json",
    host: new URL(env.upstream.url).host,
    "x-codex-installation-id": installationId,
    "x-request-id": requestId,
  };
}

function sorted(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));
}

const persona = {
  "user-agent": CODEX_PERSONA_USER_AGENT,
  originator: "codex_cli_rs",
  version: CODEX_CLIENT_VERSION,
};

/** Headers of an SDK client: its identity and transport headers never reach the upstream. */
const sdkHeaders = {
  "user-agent": "OpenAI/JS 7.0",
  "x-stainless-os": "Linux",
  "x-stainless-lang": "js",
  "openai-organization": "org-1",
  "x-forwarded-for": "10.1.2.3",
  forwarded: "for=10.1.2.3",
  "x-real-ip": "10.1.2.3",
  cookie: "a=b",
  "cf-ray": "abc",
  "sec-fetch-mode": "cors",
  via: "1.1 proxy",
  "x-api-key": "client-key",
  "chatgpt-account-id": "client-account",
  "x-codex-installation-id": "client-installation",
  accept: "application/json",
  "session-id": "sess-9",
  "x-custom-header": "kept",
};

describe("headers sent upstream", () => {
  test("Codex route, Codex CLI: its own identity headers pass; credentials and ids are the account's", async () => {
    const requestId = "req-codex-cli-1";
    const { headers, body } = await upstreamCall(
      "/backend-api/codex/responses",
      {
        "user-agent": "codex_cli_rs/0.171.0 (Linux; x86_64)",
        originator: "codex_cli_rs",
        version: "0.171.0",
        "session-id": "sess-1",
        "x-codex-beta-features": "feat",
        "x-codex-installation-id": "client-own-id",
        "x-codex-turn-metadata": JSON.stringify({ installation_id: "client-own-id", turn_id: "t1" }),
        "x-request-id": requestId,
        "x-forwarded-for": "10.9.9.9",
        cookie: "c=d",
      },
      { model: "gpt-5.2", input: [{ role: "user", content: "hi" }], stream: true },
    );
    expect(headers).toEqual(
      sorted({
        ...common(requestId, body),
        "user-agent": "codex_cli_rs/0.171.0 (Linux; x86_64)",
        originator: "codex_cli_rs",
        version: "0.171.0",
        "session-id": "sess-1",
        "x-codex-beta-features": "feat",
        "x-codex-turn-metadata": JSON.stringify({ installation_id: installationId, turn_id: "t1" }),
      }),
    );
  });

  // An SDK client on each route: the Codex persona replaces its identity, its own headers pass.
  test.each([
    {
      name: "Codex route, another client: the Codex persona replaces its identity",
      requestId: "req-codex-sdk-1",
      path: "/backend-api/codex/responses",
      body: { model: "gpt-5.2", input: [{ role: "user", content: "hi" }] },
    },
    {
      name: "/v1/responses",
      requestId: "req-responses-1",
      path: "/v1/responses",
      body: { model: "gpt-5.2", input: "hi" },
    },
    {
      name: "/v1/chat/completions",
      requestId: "req-chat-1",
      path: "/v1/chat/completions",
      body: { model: "gpt-5.2", messages: [{ role: "user", content: "hi" }] },
    },
  ])("$name", async ({ requestId, path, body: sent }) => {
    const { headers, body } = await upstreamCall(path, { ...sdkHeaders, "x-request-id": requestId }, sent);
    expect(headers).toEqual(
      sorted({
        ...common(requestId, body),
        ...persona,
        "session-id": "sess-9",
        "x-custom-header": "kept",
      }),
    );
  });

  test("Codex route, a Codex client known by its originator alone: its user-agent passes", async () => {
    const requestId = "req-codex-exec-1";
    const { headers, body } = await upstreamCall(
      "/backend-api/codex/responses",
      {
        "user-agent": "my-tool/1.0",
        originator: "codex_exec",
        "chatgpt-account-id": "someone-else",
        "x-stainless-os": "Linux",
        "x-request-id": requestId,
      },
      { model: "gpt-5.2", input: [{ role: "user", content: "hi" }] },
    );
    expect(headers).toEqual(
      sorted({
        ...common(requestId, body),
        "user-agent": "my-tool/1.0",
        originator: "codex_exec",
        "x-stainless-os": "Linux",
      }),
    );
  });
});
