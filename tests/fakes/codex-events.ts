/**
 * Event builders of the fake Codex backend: the SSE events of a text answer and of a function call,
 * shaped like the real backend's (an empty `output` in `response.completed` by default).
 *
 * @module
 */
import type { Step, Usage } from "./codex.ts";

type Json = Record<string, unknown>;

/** One SSE frame in the backend's framing. */
export const frame = (e: Json) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;

function usageJson(u: Usage = { input: 4, output: 7 }): Json {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cached ?? 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    total_tokens: u.input + u.output,
  };
}

/** A Response object skeleton. */
export function baseResponse(id: string, model: string, status: string): Json {
  return { id, object: "response", created_at: Math.floor(Date.now() / 1000), status, model, output: [] };
}

/** The events of a text answer, split in two parts around `split` (after the first delta). */
export function textEvents(
  id: string,
  model: string,
  text: string,
  o: { usage?: Usage; full?: boolean; rateLimits?: boolean },
) {
  const msgId = `msg_${id}`;
  const item = {
    id: msgId,
    type: "message",
    role: "assistant",
    status: "completed",
    content: [{ type: "output_text", text, annotations: [] }],
  };
  const half = Math.max(1, Math.floor(text.length / 2));
  const head: Json[] = [];
  if (o.rateLimits) {
    head.push({
      type: "codex.rate_limits",
      rate_limits: {
        primary: { used_percent: 12.5, window_minutes: 300, reset_at: Math.floor(Date.now() / 1000) + 3600 },
      },
    });
  }
  head.push(
    { type: "response.created", response: baseResponse(id, model, "in_progress") },
    { type: "response.in_progress", response: baseResponse(id, model, "in_progress") },
    {
      type: "response.output_item.added",
      output_index: 0,
      item: { id: msgId, type: "message", role: "assistant", status: "in_progress", content: [] },
    },
    {
      type: "response.content_part.added",
      item_id: msgId,
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: "" },
    },
    {
      type: "response.output_text.delta",
      item_id: msgId,
      output_index: 0,
      content_index: 0,
      delta: text.slice(0, half),
    },
  );
  const tail: Json[] = [
    {
      type: "response.output_text.delta",
      item_id: msgId,
      output_index: 0,
      content_index: 0,
      delta: text.slice(half),
    },
    { type: "response.output_text.done", item_id: msgId, output_index: 0, content_index: 0, text },
    {
      type: "response.content_part.done",
      item_id: msgId,
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text },
    },
    { type: "response.output_item.done", output_index: 0, item },
    {
      type: "response.completed",
      response: {
        ...baseResponse(id, model, "completed"),
        output: o.full ? [item] : [],
        usage: usageJson(o.usage),
      },
    },
  ];
  return { head, tail };
}

/** The events of a function-call answer. */
export function toolEvents(id: string, model: string, s: Extract<Step, { kind: "tool_call" }>): Json[] {
  const itemId = `fc_${id}`;
  const callId = s.callId ?? `call_${id.slice(-8)}`;
  const half = Math.floor(s.arguments.length / 2);
  const done = {
    id: itemId,
    type: "function_call",
    status: "completed",
    call_id: callId,
    name: s.name,
    arguments: s.arguments,
  };
  return [
    { type: "response.created", response: baseResponse(id, model, "in_progress") },
    {
      type: "response.output_item.added",
      output_index: 0,
      item: { ...done, status: "in_progress", arguments: "" },
    },
    {
      type: "response.function_call_arguments.delta",
      item_id: itemId,
      output_index: 0,
      delta: s.arguments.slice(0, half),
    },
    {
      type: "response.function_call_arguments.delta",
      item_id: itemId,
      output_index: 0,
      delta: s.arguments.slice(half),
    },
    {
      type: "response.function_call_arguments.done",
      item_id: itemId,
      output_index: 0,
      arguments: s.arguments,
    },
    { type: "response.output_item.done", output_index: 0, item: done },
    {
      type: "response.completed",
      response: { ...baseResponse(id, model, "completed"), output: [], usage: usageJson(s.usage) },
    },
  ];
}

/** The events of a compaction answer: one `compaction` item whose `encrypted_content` is opaque. */
export function compactionEvents(
  id: string,
  model: string,
  s: Extract<Step, { kind: "compaction" }>,
): Json[] {
  const item = { id: `cmp_${id}`, type: "compaction", encrypted_content: s.encryptedContent };
  return [
    { type: "response.created", response: baseResponse(id, model, "in_progress") },
    { type: "response.output_item.added", output_index: 0, item },
    { type: "response.output_item.done", output_index: 0, item },
    {
      type: "response.completed",
      response: { ...baseResponse(id, model, "completed"), output: [], usage: usageJson(s.usage) },
    },
  ];
}
