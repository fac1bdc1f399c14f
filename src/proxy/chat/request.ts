/**
 * Chat Completions request → Responses request. System and developer messages become
 * `instructions`; user and assistant messages keep only their role and content; assistant
 * `tool_calls` become `function_call` items and `tool` messages `function_call_output` items;
 * tools, `tool_choice`, `response_format` and `reasoning_effort` take their Responses form.
 * Anything else a chat client sends is dropped rather than forwarded.
 *
 * @module
 */
import {
  badField,
  checkStrictTool,
  isObject,
  type Json,
  optionalBoolean,
  requireModel,
} from "../validate.ts";
import { textParts, toolOutput, userParts } from "./content.ts";

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);
/** Responses fields a chat request may carry that pass through unchanged. */
const PASSED = [
  "parallel_tool_calls",
  "prompt_cache_key",
  "service_tier",
  "include",
  "reasoning",
  "text",
] as const;

/** Translates the messages of a chat request into `instructions` and Responses input items. */
function translateMessages(messages: unknown[]): { instructions: string[]; input: Json[] } {
  const instructions: string[] = [];
  const input: Json[] = [];
  messages.forEach((m, i) => {
    const at = `messages.${i}`;
    if (!isObject(m)) throw badField(at, "each message must be an object");
    if (typeof m.role !== "string" || !ROLES.has(m.role)) {
      throw badField(`${at}.role`, "role must be one of system, developer, user, assistant, tool");
    }
    switch (m.role) {
      case "system":
      case "developer":
        instructions.push(textParts(m.content, `${at}.content`));
        return;
      case "user":
        input.push({ type: "message", role: "user", content: userParts(m.content, `${at}.content`) });
        return;
      case "assistant": {
        const text = textParts(m.content, `${at}.content`);
        const parts: Json[] = text !== "" ? [{ type: "output_text", text }] : [];
        if (typeof m.refusal === "string" && m.refusal !== "")
          parts.push({ type: "refusal", refusal: m.refusal });
        if (parts.length > 0) input.push({ type: "message", role: "assistant", content: parts });
        if (m.tool_calls !== undefined && m.tool_calls !== null) {
          if (!Array.isArray(m.tool_calls))
            throw badField(`${at}.tool_calls`, "'tool_calls' must be an array");
          m.tool_calls.forEach((c, j) => {
            const f = isObject(c) && isObject(c.function) ? c.function : null;
            if (!isObject(c) || typeof c.id !== "string" || c.id === "" || !f || typeof f.name !== "string") {
              throw badField(`${at}.tool_calls.${j}`, "each tool call needs 'id' and 'function.name'");
            }
            const args = typeof f.arguments === "string" ? f.arguments : JSON.stringify(f.arguments ?? {});
            input.push({ type: "function_call", call_id: c.id, name: f.name, arguments: args });
          });
        }
        return;
      }
      case "tool": {
        const callId = m.tool_call_id ?? m.call_id;
        if (typeof callId !== "string" || callId === "")
          throw badField(`${at}.tool_call_id`, "a tool message needs 'tool_call_id'");
        input.push({
          type: "function_call_output",
          call_id: callId,
          output: toolOutput(m.content, `${at}.content`),
        });
        return;
      }
    }
  });
  return { instructions, input };
}

function translateTools(tools: unknown): Json[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw badField("tools", "'tools' must be an array");
  return tools.map((t, i) => {
    if (!isObject(t)) throw badField(`tools[${i}]`, "each tool must be an object");
    const f = isObject(t.function) ? t.function : null;
    if (!f) return t.type === "web_search_preview" ? { ...t, type: "web_search" } : t;
    if (typeof f.name !== "string" || f.name === "")
      throw badField(`tools[${i}].function.name`, "a function tool needs a name");
    checkStrictTool(f.name, f.parameters, f.strict, `tools[${i}].function.parameters`);
    const out: Json = { type: "function", name: f.name };
    if (typeof f.description === "string") out.description = f.description;
    out.parameters = f.parameters ?? { type: "object", properties: {} };
    if (typeof f.strict === "boolean") out.strict = f.strict;
    return out;
  });
}

function translateToolChoice(choice: unknown): unknown {
  if (choice === undefined || choice === null || typeof choice === "string") return choice ?? undefined;
  if (!isObject(choice)) throw badField("tool_choice", "'tool_choice' must be a string or an object");
  if (choice.type === "function" && isObject(choice.function))
    return { type: "function", name: choice.function.name };
  return choice;
}

function translateResponseFormat(rf: unknown): Json | undefined {
  if (rf === undefined || rf === null) return undefined;
  const type = typeof rf === "string" ? rf : isObject(rf) ? rf.type : undefined;
  if (type === "text" || type === "json_object") return { type };
  if (type === "json_schema" && isObject(rf)) {
    const js = rf.json_schema;
    if (!isObject(js))
      throw badField("response_format.json_schema", "'json_schema' is required for type json_schema");
    if (typeof js.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(js.name)) {
      throw badField("response_format.json_schema.name", "'name' must match ^[A-Za-z0-9_-]{1,64}$");
    }
    const out: Json = { type: "json_schema", name: js.name, schema: js.schema ?? {} };
    if (typeof js.strict === "boolean") out.strict = js.strict;
    if (typeof js.description === "string") out.description = js.description;
    return out;
  }
  throw badField("response_format.type", "'response_format.type' must be text, json_object or json_schema");
}

/** A chat request translated to a Responses request (not yet the upstream payload). */
export interface TranslatedChat {
  readonly body: Json;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

/** Validates a chat request and translates it; throws a 400 naming the field on bad input. */
export function chatToResponses(chat: Json): TranslatedChat {
  const model = requireModel(chat);
  const stream = optionalBoolean(chat, "stream") ?? false;
  if (chat.n !== undefined && chat.n !== null && chat.n !== 1) throw badField("n", "Only n=1 is supported");
  if (!Array.isArray(chat.messages) || chat.messages.length === 0) {
    throw badField("messages", "'messages' must be a non-empty array");
  }
  const { instructions, input } = translateMessages(chat.messages);
  const body: Json = { model, input };
  const given = typeof chat.instructions === "string" ? [chat.instructions] : [];
  body.instructions = [...given, ...instructions].filter((s) => s !== "").join("\n");
  for (const k of PASSED) if (chat[k] !== undefined && chat[k] !== null) body[k] = chat[k];
  const tools = translateTools(chat.tools);
  if (tools) body.tools = tools;
  const choice = translateToolChoice(chat.tool_choice);
  if (choice !== undefined) body.tool_choice = choice;
  const format = translateResponseFormat(chat.response_format);
  if (format) {
    if (isObject(body.text) && body.text.format !== undefined) {
      throw badField("response_format", "'response_format' and 'text.format' cannot both be set");
    }
    body.text = { ...(isObject(body.text) ? body.text : {}), format };
  }
  const effort = chat.reasoning_effort ?? chat.reasoningEffort;
  if (typeof effort === "string")
    body.reasoning = { effort, ...(isObject(body.reasoning) ? body.reasoning : {}) };
  const so = chat.stream_options;
  const includeUsage = isObject(so) && so.include_usage === true;
  return { body, stream, includeUsage };
}
