import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
let client: OpenAI;

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "bad1" }] });
  client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-test-unused", maxRetries: 0 });
});
afterAll(async () => {
  await env.stop();
});

describe("bad requests are 400s in the OpenAI envelope", () => {
  const post = (path: string, body: unknown) =>
    fetch(`${env.gw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const loose = { type: "object", properties: { a: { type: "string" } } };

  test("strict function with non-strict parameters: chat names tools[N].function.parameters", async () => {
    const before = env.fake.requests.length;
    const err = await client.chat.completions
      .create({
        model: "gpt-5.2",
        messages: [{ role: "user", content: "x" }],
        tools: [
          { type: "function", function: { name: "ok", parameters: loose } },
          { type: "function", function: { name: "bad", parameters: loose, strict: true } },
        ],
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.code).toBe("invalid_function_parameters");
    expect(err.param).toBe("tools[1].function.parameters");
    expect(err.message).toContain("Invalid schema for function 'bad'");
    expect(env.fake.requests.length).toBe(before);
  });

  test("strict function on /v1/responses names tools[N].parameters", async () => {
    const res = await post("/v1/responses", {
      model: "gpt-5.2",
      input: "x",
      tools: [
        {
          type: "function",
          name: "bad",
          strict: true,
          parameters: { ...loose, additionalProperties: false },
        },
      ],
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(error).toMatchObject({
      type: "invalid_request_error",
      code: "invalid_function_parameters",
      param: "tools[0].parameters",
    });
    expect(String(error.message)).toContain("Missing 'a'");
  });

  test.each([
    ["/v1/chat/completions", "{not json", null, "invalid_json"],
    [
      "/v1/chat/completions",
      { messages: [{ role: "user", content: "x" }] },
      "model",
      "invalid_request_error",
    ],
    ["/v1/chat/completions", { model: "m", messages: [] }, "messages", "invalid_request_error"],
    [
      "/v1/chat/completions",
      { model: "m", n: 2, messages: [{ role: "user", content: "x" }] },
      "n",
      "invalid_request_error",
    ],
    [
      "/v1/chat/completions",
      { model: "m", messages: [{ role: "wizard", content: "x" }] },
      "messages.0.role",
      "invalid_request_error",
    ],
    [
      "/v1/chat/completions",
      { model: "m", messages: [{ role: "tool", content: "x" }] },
      "messages.0.tool_call_id",
      "invalid_request_error",
    ],
    ["/v1/responses", { model: "m", input: 5 }, "input", "invalid_request_error"],
    ["/v1/responses", { model: "m", input: "x", stream: "yes" }, "stream", "invalid_request_error"],
    ["/backend-api/codex/responses", { model: "m", input: "x", tools: {} }, "tools", "invalid_request_error"],
    ["/backend-api/codex/responses", [1, 2], null, "invalid_request_error"],
  ])("%s %j → 400 param %s", async (path, body, param, code) => {
    const res = await post(path, body);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: Record<string, unknown> };
    expect(error.type).toBe("invalid_request_error");
    expect(error.code).toBe(code);
    expect(error.param).toBe(param);
  });
});
