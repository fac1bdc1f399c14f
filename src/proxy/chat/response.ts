/**
 * Responses events → Chat Completions: the streaming form (`chat.completion.chunk` frames, the
 * assistant role first, tool-call deltas, a finish chunk, an optional usage chunk, `[DONE]` last)
 * and the non-streaming `chat.completion` built from the final Response object.
 *
 * @module
 */
import type { EpochMs } from "../../core/types.ts";
import { hidden, JsonNeeds } from "../shapers.ts";
import type { Shaper, ShaperRefusals, StreamState, Usage } from "../stream.ts";
import { usageOf } from "../stream.ts";
import { isObject, type Json } from "../validate.ts";

/** Chat `usage` from Responses usage. */
export function chatUsage(u: Usage | null): Json | null {
  if (!u) return null;
  const prompt = u.inputTokens ?? 0;
  const completion = u.outputTokens ?? 0;
  const out: Json = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: u.totalTokens ?? prompt + completion,
  };
  if (u.cachedInputTokens !== null) out.prompt_tokens_details = { cached_tokens: u.cachedInputTokens };
  if (u.reasoningTokens !== null) out.completion_tokens_details = { reasoning_tokens: u.reasoningTokens };
  return out;
}

function finishReason(state: StreamState, response: Json | null, hasToolCalls: boolean): string {
  if (state.terminal === "incomplete") {
    const d = response && isObject(response.incomplete_details) ? response.incomplete_details.reason : null;
    return d === "content_filter" ? "content_filter" : "length";
  }
  return hasToolCalls ? "tool_calls" : "stop";
}

const chatId = () => `chatcmpl-${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;

interface CallSlot {
  readonly index: number;
  argsSent: boolean;
}

/** One Chat stream's state: its id and model, whether the role went out, its tool calls. */
class ChatStream {
  readonly id = chatId();
  readonly created: number;
  readonly calls = new Map<string, CallSlot>();
  roleSent = false;
  /**
   * Every frame's text before its `delta`, and after its `finish_reason`: the chunk object
   * `{id, object, created, model, choices: [{index: 0, delta, finish_reason}], usage?}` serialised
   * once, around the part that changes.
   */
  readonly #head: string;
  readonly #tail: string;
  /** `{id, object, created, model` of every chunk, serialised once (no closing brace). */
  readonly #open: string;

  constructor(
    readonly model: string,
    readonly includeUsage: boolean,
    now: EpochMs,
  ) {
    this.created = Math.floor(now / 1000);
    this.#open = JSON.stringify({
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model,
    }).slice(0, -1);
    this.#head = `data: ${this.#open},"choices":[{"index":0,"delta":`;
    this.#tail = includeUsage ? `}],"usage":null}\n\n` : `}]}\n\n`;
  }

  /** A `chat.completion.chunk` frame of one choice. */
  frame(delta: Json, finish: string | null = null): string {
    return `${this.#head}${JSON.stringify(delta)},"finish_reason":${JSON.stringify(finish)}${this.#tail}`;
  }

  /** `frame({ content: text })`, without making the object. */
  content(text: string): string {
    return `${this.#head}{"content":${JSON.stringify(text)}},"finish_reason":null${this.#tail}`;
  }

  /** The last chunk when usage was asked for: no choices, the usage. */
  usageFrame(usage: Json | null): string {
    return `data: ${this.#open},"choices":[],"usage":${JSON.stringify(usage)}}\n\n`;
  }

  /** The assistant role's frame, the first time. */
  role(): string {
    if (this.roleSent) return "";
    this.roleSent = true;
    return this.frame({ role: "assistant", content: "" });
  }

  slotOf(key: string): CallSlot {
    let s = this.calls.get(key);
    if (!s) {
      s = { index: this.calls.size, argsSent: false };
      this.calls.set(key, s);
    }
    return s;
  }
}

const keyOf = (json: Json): string =>
  String(json.item_id ?? (isObject(json.item) ? json.item.id : undefined) ?? json.output_index ?? "0");

/** What a Chat stream sends for one event it reads (its JSON parsed), given the stream state after it. */
type ChatHandler = (chat: ChatStream, json: Json, state: StreamState) => string;

const roleOnly: ChatHandler = (chat) => chat.role();

const TEXT_DELTA = "response.output_text.delta";
const textDelta: ChatHandler = (chat, json) =>
  typeof json.delta === "string" ? chat.role() + chat.content(json.delta) : "";

const finish: ChatHandler = (chat, json, state) => {
  const response = isObject(json.response) ? json.response : null;
  let out = chat.role() + chat.frame({}, finishReason(state, response, chat.calls.size > 0));
  if (chat.includeUsage) out += chat.usageFrame(chatUsage(usageOf(response)));
  return out;
};

/**
 * The Chat stream's handler of each event type it reads, the one list of them: every other type
 * gives nothing, and its JSON is not needed ({@link chatReads}).
 */
const CHAT_HANDLERS = new Map<string, ChatHandler>([
  ["response.created", roleOnly],
  ["response.in_progress", roleOnly],
  [TEXT_DELTA, textDelta],
  [
    "response.refusal.delta",
    (chat, json) => (typeof json.delta === "string" ? chat.role() + chat.frame({ refusal: json.delta }) : ""),
  ],
  [
    "response.output_item.added",
    (chat, json) => {
      const item = isObject(json.item) ? json.item : null;
      if (item?.type !== "function_call") return "";
      const slot = chat.slotOf(keyOf(json));
      return (
        chat.role() +
        chat.frame({
          tool_calls: [
            {
              index: slot.index,
              id: item.call_id,
              type: "function",
              function: { name: item.name, arguments: "" },
            },
          ],
        })
      );
    },
  ],
  [
    "response.function_call_arguments.delta",
    (chat, json) => {
      if (typeof json.delta !== "string") return "";
      const slot = chat.slotOf(keyOf(json));
      slot.argsSent = true;
      return chat.frame({ tool_calls: [{ index: slot.index, function: { arguments: json.delta } }] });
    },
  ],
  [
    "response.output_item.done",
    (chat, json) => {
      const item = isObject(json.item) ? json.item : null;
      if (item?.type !== "function_call") return "";
      const key = keyOf(json);
      const known = chat.calls.has(key);
      const slot = chat.slotOf(key);
      if (slot.argsSent && known) return "";
      slot.argsSent = true;
      const fn: Json = { arguments: typeof item.arguments === "string" ? item.arguments : "" };
      if (!known) fn.name = item.name;
      const call: Json = { index: slot.index, function: fn };
      if (!known) Object.assign(call, { id: item.call_id, type: "function" });
      return chat.role() + chat.frame({ tool_calls: [call] });
    },
  ],
  ["response.completed", finish],
  ["response.incomplete", finish],
  [
    "response.failed",
    (_chat, json) => {
      const resp = isObject(json.response) ? json.response : {};
      const err = isObject(resp.error) ? resp.error : {};
      return `data: ${JSON.stringify({
        error: {
          message: err.message ?? "Upstream error",
          type: err.type ?? "server_error",
          code: err.code ?? "upstream_error",
          param: null,
        },
      })}\n\n`;
    },
  ],
]);

/** The types whose JSON the Chat stream shaper reads: those it has a handler for. */
const chatReads = (type: string): boolean => CHAT_HANDLERS.has(type);

/** What the Chat stream shaper refuses to drop unread once the response id is known: what it reads. */
const CHAT_REFUSALS: ShaperRefusals = Object.freeze({
  names: Object.freeze([...CHAT_HANDLERS.keys()]),
  prefix: null,
});

/** Streaming shaper for `/v1/chat/completions`. */
export function chatStreamShaper(model: string, includeUsage: boolean, now: EpochMs): Shaper {
  const chat = new ChatStream(model, includeUsage, now);
  // The JSON of the events it reads, and of every event until the response id is known; not of
  // the ones it drops after that (reasoning deltas, finished text and parts) nor of codex.* ones.
  const needs = new JsonNeeds(chatReads);
  return {
    // Text deltas, most of an answer, first: one comparison.
    needsJson: (type) => type === TEXT_DELTA || (!hidden(type) && needs.needs(type)),
    // Once the id is known, an event of a type without a handler gives nothing and changes nothing
    // (`needs` stays as it is): the byte path need not decode it.
    drops: (type) => needs.idKnown && !chatReads(type),
    refuses: () => (needs.idKnown ? CHAT_REFUSALS : null),
    event(type, json, _raw, state) {
      needs.seen(state);
      if (!json) return "";
      // Text deltas, most of an answer, first: one comparison instead of a lookup (hashing the type).
      const handler = type === TEXT_DELTA ? textDelta : CHAT_HANDLERS.get(type);
      return handler === undefined ? "" : handler(chat, json, state);
    },
    end: () => "data: [DONE]\n\n",
  };
}

/** The non-streaming `chat.completion` of a final Response object. */
export function chatCompletion(response: Json, model: string, state: StreamState, now: EpochMs): Json {
  let content = "";
  let refusal: string | null = null;
  const toolCalls: Json[] = [];
  for (const item of Array.isArray(response.output) ? response.output : []) {
    if (!isObject(item)) continue;
    if (item.type === "message" && Array.isArray(item.content)) {
      for (const part of item.content) {
        if (!isObject(part)) continue;
        if (part.type === "output_text" && typeof part.text === "string") content += part.text;
        else if (part.type === "refusal" && typeof part.refusal === "string")
          refusal = (refusal ?? "") + part.refusal;
      }
    } else if (item.type === "function_call") {
      toolCalls.push({
        id: item.call_id,
        type: "function",
        function: { name: item.name, arguments: typeof item.arguments === "string" ? item.arguments : "" },
      });
    }
  }
  const message: Json = {
    role: "assistant",
    content: content === "" && (toolCalls.length > 0 || refusal) ? null : content,
  };
  if (refusal !== null) message.refusal = refusal;
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  const out: Json = {
    id: typeof response.id === "string" ? response.id.replace(/^resp_/, "chatcmpl-") : chatId(),
    object: "chat.completion",
    created: typeof response.created_at === "number" ? response.created_at : Math.floor(now / 1000),
    model: typeof response.model === "string" ? response.model : model,
    choices: [
      {
        index: 0,
        message,
        finish_reason: finishReason(state, response, toolCalls.length > 0),
        logprobs: null,
      },
    ],
  };
  const usage = chatUsage(usageOf(response));
  if (usage) out.usage = usage;
  return out;
}
