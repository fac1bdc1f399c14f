/**
 * Request and response schemas of the OpenAI- and Codex-compatible endpoints for the OpenAPI
 * document. The proxy reads bodies itself (`src/proxy/validate.ts`, strict where the upstream is),
 * so the routes declare no TypeBox body; these schemas document the shapes clients send and get,
 * with the fields the gateway reads or adds named and everything else passed through.
 *
 * @module
 */

// biome-ignore lint/suspicious/noExplicitAny: OpenAPI fragments are arbitrary JSON.
type Json = any;

const json = (schema: Json, example: Json) => ({ "application/json": { schema, example } });
const sse = (example: string) => ({
  "text/event-stream": {
    schema: { type: "string", description: "Server-sent events, one JSON event per `data:` line" },
    example,
  },
});

const usage = {
  type: "object",
  properties: {
    input_tokens: { type: "integer" },
    input_tokens_details: { type: "object", properties: { cached_tokens: { type: "integer" } } },
    output_tokens: { type: "integer" },
    output_tokens_details: { type: "object", properties: { reasoning_tokens: { type: "integer" } } },
    total_tokens: { type: "integer" },
  },
};

const responsesRequest = {
  type: "object",
  required: ["model"],
  additionalProperties: true,
  properties: {
    model: { type: "string", description: "A model of GET /v1/models" },
    input: {
      description: "A string, or a list of input items (messages, function call outputs, …)",
      anyOf: [{ type: "string" }, { type: "array", items: { type: "object" } }],
    },
    instructions: { type: ["string", "null"] },
    stream: { type: "boolean", default: false, description: "Answer as server-sent events" },
    tools: { type: "array", items: { type: "object" } },
    tool_choice: {},
    reasoning: {
      type: "object",
      properties: { effort: { enum: ["minimal", "low", "medium", "high", "xhigh"] } },
    },
    previous_response_id: {
      type: ["string", "null"],
      description: "Continues a conversation; routed to the account that produced it",
    },
    prompt_cache_key: { type: "string", description: "Sticky routing key (same key, same account)" },
    store: { type: "boolean" },
  },
};

const responseObject = {
  type: "object",
  required: ["id", "object", "status", "output"],
  properties: {
    id: { type: "string" },
    object: { const: "response" },
    created_at: { type: "integer", description: "epoch seconds (OpenAI format)" },
    model: { type: "string" },
    status: { enum: ["completed", "incomplete", "failed", "in_progress"] },
    output: { type: "array", items: { type: "object" } },
    usage,
  },
};

const responseExample = {
  id: "resp_123",
  object: "response",
  created_at: 1764547200,
  model: "gpt-5.2",
  status: "completed",
  output: [
    {
      type: "message",
      role: "assistant",
      content: [{ type: "output_text", text: "Hello!", annotations: [] }],
    },
  ],
  usage: { input_tokens: 12, output_tokens: 3, total_tokens: 15 },
};

const streamExample =
  'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_123","status":"in_progress"}}\n\n' +
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hello!"}\n\n' +
  'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_123","status":"completed"}}\n\n';

const chatRequest = {
  type: "object",
  required: ["model", "messages"],
  additionalProperties: true,
  properties: {
    model: { type: "string" },
    messages: {
      type: "array",
      items: {
        type: "object",
        required: ["role"],
        properties: {
          role: { enum: ["system", "developer", "user", "assistant", "tool"] },
          content: {
            anyOf: [{ type: "string" }, { type: "array", items: { type: "object" } }, { type: "null" }],
          },
        },
      },
    },
    stream: { type: "boolean", default: false },
    stream_options: { type: "object", properties: { include_usage: { type: "boolean" } } },
    tools: { type: "array", items: { type: "object" } },
    reasoning_effort: { type: "string" },
  },
};

const chatResponse = {
  type: "object",
  required: ["id", "object", "choices"],
  properties: {
    id: { type: "string" },
    object: { const: "chat.completion" },
    created: { type: "integer", description: "epoch seconds (OpenAI format)" },
    model: { type: "string" },
    choices: {
      type: "array",
      items: {
        type: "object",
        properties: {
          index: { type: "integer" },
          message: {
            type: "object",
            properties: { role: { const: "assistant" }, content: { type: ["string", "null"] } },
          },
          finish_reason: { type: ["string", "null"] },
        },
      },
    },
    usage: {
      type: "object",
      properties: {
        prompt_tokens: { type: "integer" },
        completion_tokens: { type: "integer" },
        total_tokens: { type: "integer" },
      },
    },
  },
};

const model = {
  type: "object",
  required: ["id", "object"],
  properties: {
    id: { type: "string" },
    object: { const: "model" },
    created: { type: "integer" },
    owned_by: { type: "string" },
  },
};
const modelExample = { id: "gpt-5.2", object: "model", created: 0, owned_by: "openai" };

const compactRequest = {
  type: "object",
  required: ["model", "input"],
  additionalProperties: true,
  properties: {
    model: { type: "string" },
    input: { type: "array", items: { type: "object" } },
    instructions: { type: "string" },
  },
};

const websocket = {
  parameters: [
    {
      name: "Upgrade",
      in: "header",
      required: true,
      schema: { const: "websocket" },
      description: "WebSocket upgrade",
    },
  ],
  responses: {
    "101": {
      description:
        'Switching protocols: send `{"type":"response.create", …}` messages, receive events as text frames',
    },
  },
};

/** Per `METHOD /path`: what the route itself does not declare. */
export const proxyDocs: Readonly<Record<string, Json>> = {
  "POST /v1/responses": {
    requestBody: {
      required: true,
      content: json(responsesRequest, { model: "gpt-5.2", input: "Say hello", stream: false }),
    },
    responses: {
      "200": {
        description: "The response (JSON), or its events with `stream: true`",
        content: { ...json(responseObject, responseExample), ...sse(streamExample) },
      },
    },
  },
  "POST /backend-api/codex/responses": {
    requestBody: {
      required: true,
      content: json(responsesRequest, {
        model: "gpt-5.2",
        instructions: "You are Codex.",
        input: [],
        stream: true,
      }),
    },
    responses: {
      "200": { description: "The upstream's events, passed through", content: sse(streamExample) },
    },
  },
  "GET /v1/responses": websocket,
  "GET /backend-api/codex/responses": websocket,
  "POST /v1/responses/compact": {
    requestBody: { required: true, content: json(compactRequest, { model: "gpt-5.2", input: [] }) },
    responses: {
      "200": {
        description: "The compacted history",
        content: json(
          {
            type: "object",
            properties: {
              object: { const: "response.compaction" },
              output: { type: "array", items: { type: "object" } },
            },
          },
          { object: "response.compaction", output: [{ type: "compaction", encrypted_content: "…" }] },
        ),
      },
    },
  },
  "POST /backend-api/codex/responses/compact": {
    requestBody: { required: true, content: json(compactRequest, { model: "gpt-5.2", input: [] }) },
    responses: {
      "200": {
        description: "The compacted history as one item",
        content: json({ type: "object" }, { type: "compaction", encrypted_content: "…" }),
      },
    },
  },
  "POST /v1/chat/completions": {
    requestBody: {
      required: true,
      content: json(chatRequest, { model: "gpt-5.2", messages: [{ role: "user", content: "Say hello" }] }),
    },
    responses: {
      "200": {
        description: "The completion (JSON), or chunks with `stream: true`",
        content: {
          ...json(chatResponse, {
            id: "chatcmpl-123",
            object: "chat.completion",
            created: 1764547200,
            model: "gpt-5.2",
            choices: [{ index: 0, message: { role: "assistant", content: "Hello!" }, finish_reason: "stop" }],
            usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
          }),
          ...sse(
            'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello!"}}]}\n\ndata: [DONE]\n\n',
          ),
        },
      },
    },
  },
  "GET /v1/models": {
    responses: {
      "200": {
        description: "The model list",
        content: json(
          {
            type: "object",
            properties: { object: { const: "list" }, data: { type: "array", items: model } },
          },
          { object: "list", data: [modelExample] },
        ),
      },
    },
  },
  "GET /v1/models/{id}": {
    responses: { "200": { description: "The model", content: json(model, modelExample) } },
  },
  "GET /backend-api/codex/models": {
    responses: {
      "200": {
        description: "The upstream's catalogue, passed through",
        content: json(
          { type: "object", properties: { models: { type: "array", items: { type: "object" } } } },
          { models: [{ slug: "gpt-5.2", display_name: "GPT-5.2" }] },
        ),
      },
    },
  },
};
