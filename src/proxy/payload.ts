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

/**
 * Whether {@link toUpstreamPayload} would send `body` as it is: already streamed and not stored,
 * `instructions` a string, nothing to strip, nothing to hoist. Then the client's own bytes can go
 * upstream instead of a re-serialised copy (see {@link upstreamText}).
 */
export function payloadUnchanged(body: Json): boolean {
  if (body.store !== false || body.stream !== true || typeof body.instructions !== "string") return false;
  for (const f of STRIPPED_FIELDS) if (f in body) return false;
  if (!Array.isArray(body.input)) return false;
  for (const item of body.input) {
    if (isObject(item) && HOISTED_ROLES.has(item.role as string) && (item.type ?? "message") === "message")
      return false;
  }
  if (
    body.include !== undefined &&
    !(Array.isArray(body.include) && body.include.every((i) => typeof i === "string"))
  )
    return false;
  return true;
}

/**
 * The text to send upstream for `payload` (`toUpstreamPayload(body)`), where `raw` is the client's
 * body text that parsed to `body`: `raw` itself when nothing changes and its top-level keys are
 * unique (so the upstream cannot read a different value than the one checked here), else the
 * payload serialised. Saves re-serialising long histories, the largest part of a big body's cost.
 */
export function upstreamText(body: Json, payload: Json, raw: string): string {
  if (payloadUnchanged(body) && uniqueTopLevelKeys(raw)) return raw;
  return JSON.stringify(payload);
}

const STRUCTURAL = /["{}[\]]/g;

/**
 * True when the JSON object text `raw` (already known to parse) has no top-level key twice. Walks
 * only structural characters, jumping over string contents, so a long history costs little.
 */
export function uniqueTopLevelKeys(raw: string): boolean {
  const keys = new Set<string>();
  let depth = 0;
  STRUCTURAL.lastIndex = 0;
  for (;;) {
    const m = STRUCTURAL.exec(raw);
    if (!m) return true;
    const ch = m[0];
    if (ch === '"') {
      const start = m.index + 1;
      let end = raw.indexOf('"', start);
      // A quote preceded by an odd number of backslashes is inside the string.
      for (;;) {
        if (end < 0) return false;
        let bs = 0;
        while (raw.charCodeAt(end - 1 - bs) === 92) bs++;
        if (bs % 2 === 0) break;
        end = raw.indexOf('"', end + 1);
      }
      if (depth === 1) {
        // A top-level string right after `{` or `,` is a key; after `:` it is a value.
        const before = previousSignificant(raw, m.index);
        if (before === "{" || before === ",") {
          const text = raw.slice(start, end);
          const key = text.includes("\\") ? (JSON.parse(`"${text}"`) as string) : text;
          if (keys.has(key)) return false;
          keys.add(key);
        }
      }
      STRUCTURAL.lastIndex = end + 1;
    } else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
  }
}

function previousSignificant(raw: string, i: number): string {
  let j = i - 1;
  while (j >= 0) {
    const c = raw.charCodeAt(j);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return raw[j]!;
    j--;
  }
  return "";
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
