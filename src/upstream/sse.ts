/**
 * An incremental Server-Sent Events reader: fed the upstream body chunk by chunk, it hands back each
 * complete event as soon as its blank line arrives, with the event's raw text so a pass-through can
 * forward it byte-for-byte. Nothing is held but the tail of an unfinished event.
 *
 * @module
 */

/** One SSE event: its `event:` name (if any), its joined `data:` lines, and its raw text. */
export interface SseEvent {
  readonly event: string | null;
  readonly data: string;
  /** The event as received, ending with its blank line (`\n\n`), ready to forward unchanged. */
  readonly raw: string;
}

/** Largest event accepted before the reader gives up (an upstream gone mad must not eat memory). */
export const MAX_EVENT_CHARS = 16 * 1024 * 1024;

export class SseEventTooLarge extends Error {
  override name = "SseEventTooLarge";
}

/**
 * Splits a text stream into SSE events. Accepts `\n\n`, `\r\n\r\n` and `\r\r` separators. Linear in
 * its input however an event is chunked: the text of an unfinished event is kept as pieces (each
 * scanned once, joined once), so a large event arriving in many chunks costs no rescans.
 */
export class SseReader {
  readonly #decoder: TextDecoder;
  /** The unfinished event's text so far (line ends normalised to `\n`), in pieces. */
  #pending: string[] = [];
  #pendingChars = 0;
  /** The last character of the pending text ("" when none): with a new `\n` it may end an event. */
  #last = "";
  /** A CR at the end of the input so far, held until the next character says whether it is a CRLF. */
  #heldCr = false;

  /** `midStream`: the reader takes over a stream already begun (a byte-order mark is then kept). */
  constructor(midStream = false) {
    this.#decoder = new TextDecoder("utf-8", { ignoreBOM: midStream });
  }

  /** Feeds one chunk; returns the events it completed. */
  push(chunk: Uint8Array): SseEvent[] {
    return this.pushText(this.#decoder.decode(chunk, { stream: true }));
  }

  /** Feeds already-decoded text. */
  pushText(text: string): SseEvent[] {
    let t = this.#heldCr ? `\r${text}` : text;
    this.#heldCr = false;
    // A chunk ending in CR may be the first half of a CRLF: wait for the next byte to decide.
    // After another line end it completes a blank line either way, so it is not held then.
    if (t.endsWith("\r")) {
      const before = t.length >= 2 ? t[t.length - 2] : this.#last;
      if (before !== "\r" && before !== "\n") {
        this.#heldCr = true;
        t = t.slice(0, -1);
      }
    }
    if (t.includes("\r")) t = t.replace(/\r\n?/g, "\n");
    if (t === "") return [];
    // No blank line completed (the pending text has none, so only its last character counts):
    // keep the text aside without building one string.
    const boundary = this.#last === "\n" && t.startsWith("\n");
    const first = boundary ? -1 : t.indexOf("\n\n");
    if (!boundary && first < 0) {
      this.#keep(t);
      return [];
    }
    const joined = this.#pending.length > 0;
    const buf = joined ? this.#pending.join("") + t : t;
    this.#pending = [];
    this.#pendingChars = 0;
    this.#last = "";
    const out: SseEvent[] = [];
    let start = 0;
    let end = joined || boundary ? buf.indexOf("\n\n") : first;
    while (end >= 0) {
      const ev = parseBlock(buf.slice(start, end));
      if (ev) out.push(ev);
      start = end + 2;
      end = buf.indexOf("\n\n", start);
    }
    if (start < buf.length) this.#keep(buf.slice(start));
    return out;
  }

  #keep(t: string): void {
    this.#pending.push(t);
    this.#pendingChars += t.length;
    this.#last = t[t.length - 1]!;
    if (this.#pendingChars > MAX_EVENT_CHARS) throw new SseEventTooLarge("SSE event exceeds 16 MiB");
  }

  /** Ends the stream: a last event without its blank line still counts. */
  end(): SseEvent[] {
    const rest = (this.#pending.join("") + (this.#heldCr ? "\r" : "") + this.#decoder.decode()).replace(
      /\r\n?/g,
      "\n",
    );
    this.#pending = [];
    this.#pendingChars = 0;
    this.#last = "";
    this.#heldCr = false;
    const ev = rest.trim() === "" ? null : parseBlock(rest.replace(/\n+$/, ""));
    return ev ? [ev] : [];
  }
}

/**
 * Where the `event:` line of `block` ends when the block has the backend's own framing, one
 * `event: ` line then one `data: ` line (and nothing else), else -1. The same rule as
 * `framedLineEndBytes` in `event-stream.ts` on the block's bytes (tests/upstream/framing.test.ts
 * checks they agree).
 */
export function framedLineEnd(block: string): number {
  if (!block.startsWith("event: ")) return -1;
  const nl = block.indexOf("\n", 7);
  return nl >= 0 && block.startsWith("data: ", nl + 1) && block.indexOf("\n", nl + 7) < 0 ? nl : -1;
}

/** One event block (the text before its blank line, `\n` line ends) as an event, or null when it has no field. */
export function parseBlock(block: string): SseEvent | null {
  // Fast path for the backend's own framing, one `event:` line then one `data:` line.
  const nl = framedLineEnd(block);
  if (nl >= 0) return { event: block.slice(7, nl), data: block.slice(nl + 7), raw: `${block}\n\n` };
  let event: string | null = null;
  let data: string[] | null = null;
  let any = false;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") {
      event = value;
      any = true;
    } else if (field === "data") {
      if (data) data.push(value);
      else data = [value];
      any = true;
    }
  }
  if (!any) return null;
  return { event, data: data ? data.join("\n") : "", raw: `${block}\n\n` };
}

/** The JSON payload of an event, or null when its data is not a JSON object. */
export function eventJson(ev: SseEvent): Record<string, unknown> | null {
  return jsonObject(ev.data);
}

/** An event's `data` as a JSON object, or null when it is not one. */
export function jsonObject(data: string): Record<string, unknown> | null {
  if (data === "" || data === "[DONE]") return null;
  try {
    const v = JSON.parse(data) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Frames a JSON payload as an SSE event (`event:` line + `data:` line), the upstream's own framing. */
export function formatEvent(payload: { type?: unknown } & Record<string, unknown>): string {
  const data = JSON.stringify(payload);
  return typeof payload.type === "string" ? `event: ${payload.type}\ndata: ${data}\n\n` : `data: ${data}\n\n`;
}
