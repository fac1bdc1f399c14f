import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
let client: OpenAI;
const ACC = "chatgpt-sdk1";

beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "sdk1", chatgptAccountId: ACC }] });
  client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "sk-test-unused", maxRetries: 0 });
});
afterAll(async () => {
  await env.stop();
});

const lastUpstreamBody = () => env.fake.requests.at(-1)!.body;

describe("chat completions through the real openai SDK", () => {
  test("non-streaming: content, role, finish_reason and usage", async () => {
    env.fake.script(ACC, { kind: "text", text: "hi there", usage: { input: 5, output: 3, cached: 2 } });
    const r = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello" },
      ],
    });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]!.message.role).toBe("assistant");
    expect(r.choices[0]!.message.content).toBe("hi there");
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    expect(r.usage?.prompt_tokens_details?.cached_tokens).toBe(2);
    const up = lastUpstreamBody();
    expect(up.instructions).toBe("Be brief.");
    expect(up.store).toBe(false);
    expect(up.stream).toBe(true);
    expect(up.input).toEqual([
      { type: "message", role: "user", content: [{ type: "input_text", text: "hello" }] },
    ]);
  });

  test("streaming: role delta first, content deltas, usage chunk, [DONE] last", async () => {
    env.fake.script(ACC, { kind: "text", text: "streamed content" });
    const stream = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [{ role: "user", content: "stream please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.object).toBe("chat.completion.chunk");
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("streamed content");
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish!.choices[0]!.finish_reason).toBe("stop");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 7, total_tokens: 11 });

    // The raw body ends with [DONE].
    env.fake.script(ACC, { kind: "text", text: "raw" });
    const raw = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-5.2", stream: true, messages: [{ role: "user", content: "x" }] }),
    });
    const body = await raw.text();
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  test("tool call round trip: tool_calls out, assistant tool_calls and tool messages back in", async () => {
    env.fake.script(ACC, {
      kind: "tool_call",
      name: "get_weather",
      arguments: '{"city":"Seoul"}',
      callId: "call_w1",
    });
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const r = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [{ role: "user", content: "weather in Seoul?" }],
      tools,
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(r.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call.type).toBe("function");
    if (call.type !== "function") throw new Error("expected a function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Seoul" });
    const up1 = lastUpstreamBody();
    expect(up1.tools).toEqual([
      {
        type: "function",
        name: "get_weather",
        description: "Weather for a city",
        parameters: tools[0]!.function.parameters,
      },
    ]);
    expect(up1.tool_choice).toEqual({ type: "function", name: "get_weather" });

    env.fake.script(ACC, { kind: "text", text: "It is sunny." });
    const r2 = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [
        { role: "user", content: "weather in Seoul?" },
        r.choices[0]!.message,
        { role: "tool", tool_call_id: call.id, content: '{"sky":"sunny"}' },
      ],
      tools,
    });
    expect(r2.choices[0]!.message.content).toBe("It is sunny.");
    const items = lastUpstreamBody().input as Record<string, unknown>[];
    expect(items[1]).toEqual({
      type: "function_call",
      call_id: "call_w1",
      name: "get_weather",
      arguments: '{"city":"Seoul"}',
    });
    expect(items[2]).toEqual({ type: "function_call_output", call_id: "call_w1", output: '{"sky":"sunny"}' });
  });

  test("streaming tool call arrives as tool_calls deltas", async () => {
    env.fake.script(ACC, { kind: "tool_call", name: "lookup", arguments: '{"q":"abc"}', callId: "call_s1" });
    const stream = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [{ role: "user", content: "look it up" }],
      tools: [
        { type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } },
      ],
      stream: true,
    });
    let args = "";
    let name = "";
    let finish: string | null = null;
    for await (const c of stream) {
      for (const t of c.choices[0]?.delta.tool_calls ?? []) {
        args += t.function?.arguments ?? "";
        name ||= t.function?.name ?? "";
      }
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(name).toBe("lookup");
    expect(JSON.parse(args)).toEqual({ q: "abc" });
    expect(finish).toBe("tool_calls");
  });

  test("json_schema response_format becomes text.format and the JSON answer parses", async () => {
    env.fake.script(ACC, { kind: "text", text: '{"answer":42}' });
    const schema = {
      type: "object",
      properties: { answer: { type: "integer" } },
      required: ["answer"],
      additionalProperties: false,
    };
    const r = await client.chat.completions.create({
      model: "gpt-5.2",
      messages: [{ role: "user", content: "answer?" }],
      response_format: { type: "json_schema", json_schema: { name: "Answer", schema, strict: true } },
      reasoning_effort: "low",
    });
    expect(JSON.parse(r.choices[0]!.message.content!)).toEqual({ answer: 42 });
    const up = lastUpstreamBody();
    expect(up.text).toEqual({ format: { type: "json_schema", name: "Answer", schema, strict: true } });
    expect(up.reasoning).toEqual({ effort: "low" });
    expect(up.response_format).toBeUndefined();
  });

  test("unknown message fields are dropped; chat-only fields are not forwarded", async () => {
    env.fake.script(ACC, { kind: "text", text: "ok" });
    const res = await fetch(`${env.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-5.2",
        temperature: 0.3,
        max_tokens: 10,
        messages: [{ role: "user", content: "x", name: "bob", _client_marker: 1 }],
      }),
    });
    expect(res.status).toBe(200);
    const up = lastUpstreamBody();
    expect(up.input).toEqual([
      { type: "message", role: "user", content: [{ type: "input_text", text: "x" }] },
    ]);
    expect(up.temperature).toBeUndefined();
    expect(up.max_tokens).toBeUndefined();
  });
});

describe("responses through the real openai SDK", () => {
  test("stream: finalResponse() has the output even though the upstream's final output is empty", async () => {
    env.fake.script(ACC, { kind: "text", text: "streamed answer", rateLimits: true });
    const stream = client.responses.stream({ model: "gpt-5.2", input: "hello" });
    const types: string[] = [];
    stream.on("event", (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe("streamed answer");
    expect(final.output.length).toBe(1);
    expect(types[0]).toBe("response.created");
    expect(types.some((t) => t.startsWith("codex."))).toBe(false);
  });

  test("non-stream: a JSON Response object assembled from the stream", async () => {
    env.fake.script(ACC, { kind: "text", text: "plain answer" });
    const r = await client.responses.create({ model: "gpt-5.2", input: "hello", instructions: "be nice" });
    expect(r.object).toBe("response");
    expect(r.status).toBe("completed");
    expect(r.output_text).toBe("plain answer");
    expect(r.usage?.total_tokens).toBe(11);
  });

  test("models.list() lists the upstream's API models", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(["gpt-5.2", "gpt-5.2-codex"]);
    const codex = await fetch(`${env.gw.url}/backend-api/codex/models`);
    const body = (await codex.json()) as { models: { slug: string }[]; object: string };
    expect(body.object).toBe("list");
    expect(body.models.map((m) => m.slug)).toContain("internal-only");
  });
});
