/**
 * What a WebSocket client gets of a turn's stream: each event's JSON as its own text frame (the
 * stream code hands out SSE text; the frames are cut from it at {@link FRAME_SEPARATOR}), with
 * `codex.*` events hidden on the public `/v1/responses` socket. The turn's output items are kept so
 * the socket can resend the conversation to an upstream connection that did not see it.
 *
 * @module
 */
import type { SseEvent } from "../../upstream/sse.ts";
import type { Outcome, UpstreamEventSource } from "../attempt.ts";
import { OutputItems } from "../shapers.ts";
import type { Shaper } from "../stream.ts";
import type { Json } from "../validate.ts";

/** Separates frames in the shaper's text; a control character JSON text never holds unescaped. */
export const FRAME_SEPARATOR = "\u001e";

/** The `data:` of one SSE event's raw text. */
export function dataOf(raw: string): string {
  if (raw.startsWith("event: ")) {
    const nl = raw.indexOf("\n");
    if (nl > 0 && raw.startsWith("data: ", nl + 1)) {
      const end = raw.length - 2;
      if (raw.indexOf("\n", nl + 1) === end) return raw.slice(nl + 7, end);
    }
  }
  const lines: string[] = [];
  for (const line of raw.split("\n")) {
    if (line.startsWith("data:")) lines.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  return lines.join("\n");
}

export class WsShaper implements Shaper {
  readonly #items = new OutputItems();
  #outputSize = 0;

  constructor(private readonly hideCodexEvents: boolean) {}

  needsJson(type: string): boolean {
    return type === "response.output_item.done";
  }

  event(type: string, json: Json | null, raw: string): string {
    if (this.hideCodexEvents && type.startsWith("codex.")) return "";
    const data = dataOf(raw);
    if (type === "response.output_item.done") {
      this.#items.add(json);
      this.#outputSize += data.length;
    }
    return data === "" ? "" : data + FRAME_SEPARATOR;
  }

  end(): string {
    return "";
  }

  /** The size of the turn's output items as JSON text (characters of their events). */
  outputSize(): number {
    return this.#outputSize;
  }

  /** The output items of the turn, in order. */
  items(): Json[] {
    return this.#items.list();
  }
}

/** A finished empty turn made here (no upstream call): `response.created` then `response.completed`. */
export function syntheticTurn(model: string, now: number): Outcome {
  const id = `resp_lb_${crypto.randomUUID().replace(/-/g, "")}`;
  const base = { id, object: "response", created_at: Math.floor(now / 1000), model, output: [] };
  const ev = (type: string, response: Json): SseEvent => {
    const data = JSON.stringify({ type, response });
    return { event: type, data, raw: `event: ${type}\ndata: ${data}\n\n` };
  };
  const events: SseEvent[] = [
    ev("response.created", { ...base, status: "in_progress" }),
    ev("response.completed", {
      ...base,
      status: "completed",
      usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
    }),
  ];
  const source: UpstreamEventSource = {
    next: async () => (events.length > 0 ? events.splice(0) : null),
    cancel: () => {},
  };
  return {
    kind: "open",
    open: { events: source, prelude: [], headers: new Headers(), controller: new AbortController() },
  };
}
