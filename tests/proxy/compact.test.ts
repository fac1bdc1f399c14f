/**
 * Remote compaction on both paths: one upstream `/codex/responses` call whose input ends with
 * `compaction_trigger`, answered as `response.compaction` with the item's `encrypted_content`
 * unchanged, from the account that owns the session.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "c1" }, { id: "c2" }] });
});
afterAll(async () => {
  await env.stop();
});

const history = [
  { type: "message", role: "user", content: [{ type: "input_text", text: "hello" }] },
  { type: "message", role: "assistant", content: [{ type: "output_text", text: "hi there" }] },
];
// Opaque, with characters a careless re-encoding would change.
const SECRET = 'gAAAAABo+/x==\u00e9\\u00e9"quoted"~end';

const compact = (path: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  fetch(`${env.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("remote compaction", () => {
  for (const path of ["/backend-api/codex/responses/compact", "/v1/responses/compact"]) {
    test(`${path}: one upstream turn ending in compaction_trigger, the item comes back untouched from the session owner`, async () => {
      const session = `sess-${path.length}-${Date.now()}`;
      // The session belongs to c2 (c1 would be picked otherwise: fill_first).
      await env.gw.running.gateway.sticky.bind(session, "session", "c2", Date.now(), 3_600_000);
      env.fake.script("chatgpt-c2", { kind: "compaction", encryptedContent: SECRET });
      const before = env.fake.requests.length;
      const res = await compact(
        path,
        { model: "gpt-5.2", instructions: "be brief", input: history },
        { "session-id": session },
      );
      expect(res.status).toBe(200);
      expect(res.headers.get("x-codex-primary-used-percent")).toBe("40");
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.object).toBe("response.compaction");
      expect(body.status).toBe("completed");
      expect(body.output).toEqual([
        { id: expect.stringMatching(/^cmp_resp_fake/), type: "compaction", encrypted_content: SECRET },
      ]);
      expect(body.usage).toMatchObject({ input_tokens: 4, output_tokens: 7 });

      const calls = env.fake.requests.slice(before);
      expect(calls.length).toBe(1);
      const up = calls[0]!;
      expect(up.chatgptAccountId).toBe("chatgpt-c2");
      expect(up.body.stream).toBe(true);
      expect(up.body.store).toBe(false);
      const input = up.body.input as Record<string, unknown>[];
      expect(input.at(-1)).toEqual({ type: "compaction_trigger" });
      expect(input.length).toBe(history.length + 1);

      const row = await eventually(() =>
        env.db.selectFrom("request_logs").selectAll().where("endpoint", "=", path).executeTakeFirst(),
      );
      expect(row).toMatchObject({
        account_id: "c2",
        status: "success",
        http_status: 200,
        transport: "http",
        upstream_transport: "http",
        kind: "compact",
      });
    });
  }

  test("an in-band compaction over HTTP (a Responses turn ending in compaction_trigger) is passed through and logged as compact", async () => {
    // How the Codex CLI compacts over HTTP since remote compaction v2: a plain streamed turn.
    env.fake.script("chatgpt-c1", { kind: "compaction", encryptedContent: SECRET });
    const before = env.fake.requests.length;
    const res = await fetch(`${env.gw.url}/backend-api/codex/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-5.2",
        instructions: "x",
        stream: true,
        store: false,
        input: [...history, { type: "compaction_trigger" }],
      }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const done = text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map(
        (l) =>
          JSON.parse(l.slice(6)) as { type: string; item?: { type: string; encrypted_content?: string } },
      )
      .filter((e) => e.type === "response.output_item.done");
    expect(done.map((e) => e.item)).toEqual([
      expect.objectContaining({ type: "compaction", encrypted_content: SECRET }),
    ]);
    const up = env.fake.requests.slice(before);
    expect(up.length).toBe(1);
    expect((up[0]!.body.input as Record<string, unknown>[]).at(-1)).toEqual({ type: "compaction_trigger" });
    const requestId = res.headers.get("x-request-id");
    const row = await eventually(() =>
      env.db.selectFrom("request_logs").selectAll().where("request_id", "=", requestId!).executeTakeFirst(),
    );
    expect(row).toMatchObject({
      endpoint: "/backend-api/codex/responses",
      kind: "compact",
      status: "success",
    });
  });

  test("a trigger already last is not added twice", async () => {
    env.fake.script("chatgpt-c1", { kind: "compaction", encryptedContent: "x" });
    const before = env.fake.requests.length;
    const res = await compact("/v1/responses/compact", {
      model: "gpt-5.2",
      input: [...history, { type: "compaction_trigger" }],
    });
    expect(res.status).toBe(200);
    const input = env.fake.requests[before]!.body.input as unknown[];
    expect(input.filter((i) => (i as { type?: string }).type === "compaction_trigger").length).toBe(1);
  });

  test("a body without input is a 400 naming the field, and nothing goes upstream", async () => {
    const before = env.fake.requests.length;
    for (const path of ["/backend-api/codex/responses/compact", "/v1/responses/compact"]) {
      const res = await compact(path, { model: "gpt-5.2", instructions: "x" });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { param: string; type: string; message: string } };
      expect(body.error.param).toBe("input");
      expect(body.error.type).toBe("invalid_request_error");
      expect(body.error.message).toContain("input");
    }
    const bad = await compact("/v1/responses/compact", { model: "gpt-5.2", input: 42 });
    expect(bad.status).toBe(400);
    expect(env.fake.requests.length).toBe(before);
  });

  test("fails over before the first event (at most two accounts); an upstream without a compaction item is a 502", async () => {
    env.fake.script("chatgpt-c1", {
      kind: "http_error",
      status: 429,
      body: { error: { code: "rate_limit_exceeded", message: "slow down" } },
    });
    env.fake.script("chatgpt-c2", { kind: "compaction", encryptedContent: "moved" });
    const res = await compact("/v1/responses/compact", { model: "gpt-5.2", input: history });
    expect(res.status).toBe(200);
    expect(
      ((await res.json()) as { output: { encrypted_content: string }[] }).output[0]!.encrypted_content,
    ).toBe("moved");

    env.fake.script("chatgpt-c2", { kind: "text", text: "no compaction here" });
    const none = await compact(
      "/v1/responses/compact",
      { model: "gpt-5.2", input: history },
      { "session-id": "no-item" },
    );
    expect(none.status).toBe(502);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("upstream_error");
  });

  test("the openai SDK can call /v1/responses/compact", async () => {
    env.fake.script("chatgpt-c2", { kind: "compaction", encryptedContent: "sdk-item" });
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const out = (await client.post("/responses/compact", {
      body: { model: "gpt-5.2", input: history },
    })) as { object: string; output: { encrypted_content: string }[] };
    expect(out.object).toBe("response.compaction");
    expect(out.output[0]!.encrypted_content).toBe("sdk-item");
  });

  test("at most two accounts are tried", async () => {
    const three = await startProxyEnv({ accounts: [{ id: "t1" }, { id: "t2" }, { id: "t3" }] });
    try {
      for (const id of ["t1", "t2", "t3"]) {
        three.fake.script(`chatgpt-${id}`, {
          kind: "http_error",
          status: 429,
          body: { error: { code: "rate_limit_exceeded", message: "slow down" } },
        });
      }
      const res = await fetch(`${three.gw.url}/v1/responses/compact`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: history }),
      });
      expect(res.status).toBe(429);
      expect(three.fake.requests.map((r) => r.chatgptAccountId)).toEqual(["chatgpt-t1", "chatgpt-t2"]);
      const row = await eventually(() => three.db.selectFrom("request_logs").selectAll().executeTakeFirst());
      expect(row).toMatchObject({ endpoint: "/v1/responses/compact", status: "error", http_status: 429 });
    } finally {
      await three.stop();
    }
  });
});
