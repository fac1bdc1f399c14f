/**
 * Turns a validated Responses request into the body the ChatGPT backend accepts: always streamed,
 * never stored, unsupported fields stripped, a string `input` made a message list, and system /
 * developer input messages hoisted into `instructions`.
 *
 * @module
 */
import { isObject, type Json } from "./validate.ts";

/** Fields the Codex backend refuses or ignores; dropped before sending. */
export const STRIPPED_FIELDS = [
  "max_output_tokens",
  "max_tokens",
  "max_completion_tokens",
  "metadata",
  "prompt_cache_retention",
  "safety_identifier",
  "temperature",
  "top_p",
  "truncation",
  "user",
  "prompt_cache_options",
  "stream_options",
  "background",
  "n",
] as const;

const HOISTED_ROLES = new Set(["system", "developer"]);

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => (isObject(p) && typeof p.text === "string" ? p.text : typeof p === "string" ? p : ""))
    .join("");
}

/** The upstream body for `/codex/responses`. Does not modify `body`. */
export function toUpstreamPayload(body: Json): Json {
  const out: Json = { ...body };
  for (const f of STRIPPED_FIELDS) delete out[f];
  out.store = false;
  out.stream = true;
  let instructions = typeof out.instructions === "string" ? out.instructions : "";
  if (typeof out.input === "string") {
    out.input = [{ type: "message", role: "user", content: [{ type: "input_text", text: out.input }] }];
  } else if (Array.isArray(out.input)) {
    const hoisted: string[] = [];
    const kept: unknown[] = [];
    for (const item of out.input) {
      if (
        isObject(item) &&
        HOISTED_ROLES.has(item.role as string) &&
        (item.type ?? "message") === "message"
      ) {
        hoisted.push(textOf(item.content));
      } else kept.push(item);
    }
    if (hoisted.length > 0) {
      instructions = [instructions, ...hoisted].filter((s) => s !== "").join("\n");
      out.input = kept;
    }
  } else if (out.input === undefined || out.input === null) {
    out.input = [];
  }
  out.instructions = instructions;
  if (Array.isArray(out.include)) out.include = out.include.filter((i) => typeof i === "string");
  return out;
}

/** Routing fields of a request body (sticky sessions, `previous_response_id` owners). */
export function routingFields(body: Json): {
  promptCacheKey: string | null;
  previousResponseId: string | null;
} {
  return {
    promptCacheKey: typeof body.prompt_cache_key === "string" ? body.prompt_cache_key : null,
    previousResponseId: typeof body.previous_response_id === "string" ? body.previous_response_id : null,
  };
}

/** `reasoning.effort` of a request, for the log row. */
export function reasoningEffortOf(body: Json): string | null {
  const r = body.reasoning;
  return isObject(r) && typeof r.effort === "string" ? r.effort : null;
}
