/**
 * Turns a validated Responses request into the body the ChatGPT backend accepts: always streamed,
 * never stored, unsupported fields stripped, a string `input` made a message list, and system /
 * developer input messages hoisted into `instructions`.
 *
 * @module
 */
import {
  type JsonOutline,
  type OutlineItem,
  type OutlineValue,
  outlineObject,
  Scan,
  skipWs,
  stringEnd,
} from "./json-outline.ts";
import { isObject, type Json, parseBody } from "./validate.ts";

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

/**
 * The members of a Responses input item the gateway reads, and the only ones an outlined item
 * holds (see {@link ReadBody}): `role` and `type` by {@link hoisted}, `content` by {@link textOf}
 * (of a hoisted message only), `type` of the last item by `requestKindOf` (src/proxy/log-row.ts).
 * A new reader of another member (`id`, `call_id`…) must add it here.
 */
const ITEM_KEYS = ["role", "type", "content"] as const;

/** An input item whose text moves into `instructions`: a system or developer message. */
function hoisted(item: unknown): item is Json {
  if (!isObject(item)) return false;
  const role = item.role;
  return (role === "system" || role === "developer") && (item.type ?? "message") === "message";
}

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
    const texts: string[] = [];
    const kept: unknown[] = [];
    for (const item of out.input) {
      if (hoisted(item)) texts.push(textOf(item.content));
      else kept.push(item);
    }
    if (texts.length > 0) {
      instructions = [instructions, ...texts].filter((s) => s !== "").join("\n");
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
  for (const item of body.input) if (hoisted(item)) return false;
  if (
    body.include !== undefined &&
    !(Array.isArray(body.include) && body.include.every((i) => typeof i === "string"))
  )
    return false;
  return true;
}

/**
 * A Responses request body read from the client's text (see {@link readBody}). `body` is the value
 * `JSON.parse` gives, except that when the text has an outline the items of `body.input` hold only
 * the members the gateway reads: `role`, `type`, and the `content` of a message whose text moves
 * into `instructions`. Nothing serialises them: {@link upstreamText} sends each item's own text,
 * and `readResponses` always sets the spec's `payloadText` and `payloadBody`, so the
 * `JSON.stringify(payload)` fallbacks of `openUpstream` (attempt.ts) and the reservation's size
 * (reservations.ts) never run on such a payload.
 */
export interface ReadBody {
  readonly body: Json;
  /** Where the text of each element of `body.input` is, by index (null: not outlined). */
  readonly items: readonly OutlineItem[] | null;
  /** The text's top-level members (null: not outlined). */
  readonly members: JsonOutline["members"] | null;
}

/**
 * Bodies shorter than this many characters (8,192 UTF-16 code units, compared with `text.length`)
 * are parsed whole: `JSON.parse` is faster on short strings, and the outline pays off on long
 * histories (measured on Codex-like histories: about even at 7 KB, 0.75× the CPU at 14 KB, 0.45×
 * at 230 KB).
 */
export const OUTLINE_MIN_LENGTH = 8192;

/**
 * Reads a Responses body (throws parseBody's 400s): from its outline (src/proxy/json-outline.ts)
 * when it is long and has one, so a long history's strings are neither copied nor collected; else
 * parsed whole, as before. Either way the same values for everything the gateway reads.
 */
export function readBody(text: string, minLength = OUTLINE_MIN_LENGTH): ReadBody {
  const outline = text.length >= minLength ? outlineObject(text, "input", ITEM_KEYS) : null;
  if (!outline) return { body: parseBody(text), items: null, members: null };
  const body: Json = {};
  for (const [k, m] of outline.members) {
    if (k === "input" && outline.items) {
      body[k] = outline.items.map((it) =>
        it.object ? shallowItem(text, it) : JSON.parse(text.slice(it.start, it.end)),
      );
    } else body[k] = valueAt(text, m.value);
  }
  return { body, items: outline.items, members: outline.members };
}

/** An outlined input item with the members the gateway reads (see {@link ReadBody}). */
function shallowItem(text: string, it: OutlineItem): Json {
  const [role, type, content] = it.values;
  const item: Json = {};
  if (role) item.role = valueAt(text, role);
  if (type) item.type = valueAt(text, type);
  if (content && hoisted(item)) item.content = valueAt(text, content);
  return item;
}

function valueAt(text: string, v: OutlineValue): unknown {
  return v.plain ? text.slice(v.start + 1, v.end - 1) : JSON.parse(text.slice(v.start, v.end));
}

/**
 * The text to send upstream for `payload` (`toUpstreamPayload(body)`), where `raw` is the client's
 * body text that parsed to `body`, provided its top-level keys are unique (so the upstream cannot
 * read a different value than the one checked here): `raw` itself when nothing changes; else the
 * client's text of each top-level member the payload keeps as it is, and only the changed members
 * (`store`, `stream`, `instructions`, a rewritten `input`…) serialised, in the payload's key order.
 * Saves re-serialising long histories, the largest part of a big body's cost. Duplicate keys: the
 * payload serialised. `read`: the body as {@link readBody} read it — its members' places, and each
 * kept input item sent as its own text (an outlined item cannot be serialised).
 */
export function upstreamText(body: Json, payload: Json, raw: string, read?: ReadBody): string {
  return partsText(upstreamParts(body, payload, raw, read));
}

/**
 * {@link upstreamText} as the pieces it is put together from, in order: slices of `raw` (a
 * slice shares `raw`'s characters, none copied) and the few members serialised anew. Each piece
 * starts and ends with an ASCII character (a brace, bracket, comma, quote, digit or letter: e.g.
 * `"parallel_tool_calls":true`), so no surrogate pair is split between pieces and encoding the
 * pieces one by one gives the bytes of the whole text. `[raw]` when nothing changes.
 */
export function upstreamParts(body: Json, payload: Json, raw: string, read?: ReadBody): string[] {
  const unchanged = payloadUnchanged(body);
  const members = read?.members ?? topLevelMembers(raw);
  if (!members) return [JSON.stringify(payload)];
  if (unchanged) return [raw];
  const items = read?.items ?? null;
  // Filled by `push`, not written `["{"]`: a literal of constants starts out as a copy-on-write
  // array, whose first `push` changes its kind, and the engine's compiled code for this function,
  // specialised on the kind seen first, would be thrown away and compiled again.
  const parts: string[] = [];
  parts.push("{");
  for (const k of Object.keys(payload)) {
    const v = payload[k];
    if (v === undefined) continue;
    const m = members.get(k);
    const first = parts.length === 1;
    // The same value (the same object, or an equal primitive) as the client's member: its own text.
    // `Object.is`, not `===`: the values are of every JSON type, and the engine's compiled `===`
    // guesses their types, fails the guess on many calls and is compiled again, over and over
    // (`Object.is` differs only for NaN and -0 against 0, which a payload member copied from the
    // body or set by `toUpstreamPayload` to a boolean, string or array never meets).
    if (m && Object.is(body[k], v)) {
      if (!first) parts.push(",");
      parts.push(raw.slice(m.start, m.end));
    } else if (k === "input" && items && Array.isArray(v) && Array.isArray(body.input)) {
      parts.push(first ? '"input":[' : ',"input":[');
      keptTexts(body.input, items, v, raw, parts);
      parts.push("]");
    } else {
      const value = JSON.stringify(v);
      if (value !== undefined) parts.push(`${first ? "" : ","}${JSON.stringify(k)}:${value}`);
    }
  }
  parts.push("}");
  return parts;
}

/**
 * The pieces as one text. Concatenated, not joined: the client's long members stay shared. Starts
 * from the first piece, not from `""`: one piece (`[raw]`, an unchanged body) comes back as that
 * very string. Once this function is compiled for bodies of several pieces, the engine's compiled
 * `"" + raw` makes a new two-piece string (a rope) of raw's length instead of returning `raw`; then
 * `upstreamBody`'s `text === raw` compares a rope with `raw`, which copies the whole rope into a
 * new flat string (the body's length again, kept as `payloadText`) and compares every character:
 * under load with the 261 KB Codex body that made the unchanged body cost more CPU than a changed
 * one (`tests/proxy/payload-text.test.ts` checks the first piece comes back as it is).
 */
export function partsText(parts: readonly string[]): string {
  if (parts.length === 0) return "";
  let out = parts[0]!;
  for (let i = 1; i < parts.length; i++) out += parts[i]!;
  return out;
}

/**
 * Pushes onto `out` the texts of `kept`, the elements of `input` (outlined as `items`) that the
 * payload keeps, in order, comma-separated: each one's own text. {@link toUpstreamPayload} keeps
 * elements of `input` itself, in order, so one forward search finds them all.
 */
function keptTexts(
  input: readonly unknown[],
  items: readonly OutlineItem[],
  kept: unknown[],
  raw: string,
  out: string[],
): void {
  let j = 0;
  for (let x = 0; x < kept.length; x++) {
    while (input[j] !== kept[x]) j++;
    const it = items[j++]!;
    if (x > 0) out.push(",");
    out.push(raw.slice(it.start, it.end));
  }
}

/**
 * What to hand `fetch` for the upstream text `text` ({@link upstreamText}) of the client's body
 * text `raw`: `raw` itself when it goes unchanged (the runtime sends the text it decoded without
 * converting it again), else `text` encoded as UTF-8 once here. A text built in JavaScript (a
 * changed body) costs `fetch` several times as much to convert as `TextEncoder` does: about
 * 80 µs of a 256 KB body's CPU (`bun scripts/bench-body.ts`). Same bytes either way.
 *
 * Given the text's pieces (`parts`, {@link upstreamParts}), a long changed text (from
 * {@link SCRATCH_MIN_LENGTH} to {@link SCRATCH_MAX_LENGTH} characters) goes as a function that
 * makes its bytes at the `fetch` call instead ({@link encodedAtSend}).
 */
export function upstreamBody(
  text: string,
  raw: string,
  parts?: readonly string[],
): string | Uint8Array | (() => Uint8Array) {
  // Given the pieces, unchanged is one piece that is `raw` itself: a text built of several pieces
  // is never compared with `raw` (a comparison of a built text of raw's length, e.g. `store: true`
  // and `stream: false` made `false` and `true`, copies all of it into one flat text first).
  if (parts ? parts.length === 1 && parts[0] === raw : text === raw) return raw;
  const n = text.length;
  if (parts && n >= SCRATCH_MIN_LENGTH && n <= SCRATCH_MAX_LENGTH) return () => encodedAtSend(parts);
  return encoder.encode(text);
}

/**
 * Shorter texts get a buffer of their own: a small one costs little, and one `encode` call less
 * than encoding piece by piece (about 2.5 µs per short request in a /tmp microbenchmark).
 */
const SCRATCH_MIN_LENGTH = 8192;
/**
 * Texts up to this many characters are encoded into the one reused buffer (UTF-8 takes at most
 * 3 bytes per UTF-16 code unit, so up to 4 MiB; allocated when first needed, and kept).
 */
const SCRATCH_MAX_LENGTH = (4 * 1024 * 1024) / 3;
let scratch: Uint8Array | null = null;
const encoder = new TextEncoder();

/**
 * The UTF-8 bytes of the text made of `parts`, written into one buffer reused by every call
 * (sized from the pieces' own lengths), so valid only until the next call: they must go straight to
 * the upstream call: `fetch` copies a byte body when it is called (the Fetch Standard's "extract a
 * body": "a copy of the bytes"), the own HTTP/1.1 client writes or copies it within the call and
 * calls this again for a retry (`tests/upstream/client.test.ts` checks both). A new 256 KB buffer per
 * request costs its allocation and the garbage collector's share far more than the copy (paired
 * 127.0.0.1 runs, 261 KB body, 16 connections: −119 µs CPU per request against `TextEncoder`'s
 * `encode` of the concatenated text). Each piece is encoded from its own characters (a slice of
 * the client's text is not copied first), and pieces start and end with ASCII characters, so the
 * bytes are those of the whole text (`tests/proxy/payload-text.test.ts`). Throws rather than send
 * a cut-off body if a piece does not fit (a text longer than {@link SCRATCH_MAX_LENGTH}).
 */
export function encodedAtSend(parts: readonly string[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const need = length * 3;
  if (scratch === null || scratch.length < need) {
    scratch = new Uint8Array(Math.min(SCRATCH_MAX_LENGTH * 3, Math.max(need, (scratch?.length ?? 0) * 2)));
  }
  let at = 0;
  for (const p of parts) {
    const { read, written } = encoder.encodeInto(p, scratch.subarray(at));
    if (read < p.length) throw new Error(`encodedAtSend: ${length} characters do not fit the reused buffer`);
    at += written;
  }
  return scratch.subarray(0, at);
}

/**
 * The upstream text of a payload made anew (a Chat Completions translation, a compaction):
 * serialised once, here. The key's reservation sizes it and the attempt sends it as it is, as
 * before; each serialised the payload again before. (Its TextEncoder bytes were no cheaper to send:
 * profiles of a 261 KB chat history at 16 connections, fetch 387/459 µs with the bytes against
 * 302/190 with the text.)
 */
export function serialised(payload: Json): { payloadText: string } {
  return { payloadText: JSON.stringify(payload) };
}

/**
 * True when the JSON object text `raw` (already known to parse) has no top-level key twice. Walks
 * only structural characters, jumping over string contents, so a long history costs little.
 */
export function uniqueTopLevelKeys(raw: string): boolean {
  return topLevelMembers(raw) !== null;
}

/** Where a top-level member is in the text: from its key's opening quote to the end of its value. */
interface Member {
  readonly start: number;
  readonly end: number;
}

/**
 * The top-level members of the JSON object text `raw` (already known to parse) by key, or null
 * when a key appears twice. Strings are skipped with `indexOf` (no per-character work inside them),
 * so a long history costs little. The older scanner: it reads the bodies the outline does not
 * (shorter than {@link OUTLINE_MIN_LENGTH}, or declined), with the outline's `skipWs` and
 * `stringEnd` (src/proxy/json-outline.ts).
 */
export function topLevelMembers(raw: string): Map<string, Member> | null {
  const out = new Map<string, Member>();
  const scan = new Scan();
  let i = skipWs(raw, 0) + 1; // past the opening brace
  for (;;) {
    i = skipWs(raw, i);
    const c = raw.charCodeAt(i);
    if (c === 125 /* } */ || Number.isNaN(c)) return out;
    if (c === 44 /* , */) {
      i++;
      continue;
    }
    // A key.
    const start = i;
    const keyEnd = stringEnd(raw, i, scan);
    if (keyEnd < 0) return null;
    const text = raw.slice(start + 1, keyEnd - 1);
    const key = scan.escaped ? (JSON.parse(`"${text}"`) as string) : text;
    if (out.has(key)) return null;
    i = skipWs(raw, skipWs(raw, keyEnd) + 1); // past the colon
    const end = valueEnd(raw, i, scan);
    if (end < 0) return null;
    out.set(key, { start, end });
    i = end;
  }
}

/** The index just past the JSON value starting at `i` (-1: malformed). */
function valueEnd(raw: string, i: number, scan: Scan): number {
  const c = raw.charCodeAt(i);
  if (c === 34 /* " */) return stringEnd(raw, i, scan);
  if (c === 123 /* { */ || c === 91 /* [ */) {
    let depth = 0;
    let j = i;
    for (;;) {
      const q = raw.indexOf('"', j);
      const stop = q < 0 ? raw.length : q;
      for (; j < stop; j++) {
        const ch = raw.charCodeAt(j);
        if (ch === 123 || ch === 91) depth++;
        else if (ch === 125 || ch === 93) {
          depth--;
          if (depth === 0) return j + 1;
        }
      }
      if (q < 0) return -1;
      const e = stringEnd(raw, q, scan);
      if (e < 0) return -1;
      j = e;
    }
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  for (;;) {
    const ch = raw.charCodeAt(j);
    if (
      Number.isNaN(ch) ||
      ch === 44 ||
      ch === 125 ||
      ch === 93 ||
      ch === 32 ||
      ch === 9 ||
      ch === 10 ||
      ch === 13
    )
      return j;
    j++;
  }
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
