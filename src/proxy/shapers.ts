/**
 * Shapers of the Responses endpoints: the Codex endpoint passes every event on unchanged; the
 * public `/v1/responses` stream hides `codex.*` events, always starts with `response.created`, and
 * fills an empty `output` of the terminal event from the items seen (the events it does not change
 * go on as the upstream's bytes); the non-streaming form
 * assembles the final Response object from the same events.
 *
 * @module
 */
import { formatEvent } from "../upstream/sse.ts";
import type { Shaper, ShaperRefusals, StreamState } from "./stream.ts";
import { isObject, type Json } from "./validate.ts";

const TERMINALS = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** `/backend-api/codex/responses`: every event as the upstream sent it (errors already rewritten). */
export const codexShaper: Shaper = {
  needsJson: () => false,
  event: (_type, _json, raw) => raw,
  end: () => "",
  passThrough: true,
};

/** Collects the output items of a stream, by `output_index`, to backfill an empty final `output`. */
export class OutputItems {
  readonly #items: { index: number; item: Json }[] = [];

  add(json: Json | null): void {
    if (!json || !isObject(json.item)) return;
    const index = typeof json.output_index === "number" ? json.output_index : this.#items.length;
    this.#items.push({ index, item: json.item });
  }

  /** `response` with its `output` filled when it came empty. Returns the same object when nothing changed. */
  backfill(response: Json): Json {
    const out = response.output;
    if (Array.isArray(out) && out.length > 0) return response;
    if (this.#items.length === 0) return Array.isArray(out) ? response : { ...response, output: [] };
    const items = [...this.#items].sort((a, b) => a.index - b.index).map((x) => x.item);
    return { ...response, output: items };
  }

  /** The items seen, in output order. */
  list(): Json[] {
    return [...this.#items].sort((a, b) => a.index - b.index).map((x) => x.item);
  }
}

/** The events the `/v1/responses` stream shaper reads as JSON: finished output items and the end. */
const READS = new Set(["response.output_item.done", ...TERMINALS]);
const readsItems = (type: string): boolean => READS.has(type);

/** The prefix of the types the `/v1/responses` stream hides (the Codex backend's own events). */
const HIDDEN_PREFIX = "codex.";
/** A type of the Codex backend's own events (`codex.*`), which the public endpoints never show. */
export const hidden = (type: string): boolean => type.startsWith(HIDDEN_PREFIX);

/**
 * Which events' JSON a shaper that reads some types must parse for the stream to end as parsing
 * every event would: the types it reads ({@link reads}), and every type until the stream's response
 * id is known (the gateway takes the first id it sees, from any event that carries one); not the
 * deltas it skips after that. The shaper calls {@link seen} with the state of each event it gets.
 */
export class JsonNeeds {
  #idKnown = false;

  constructor(private readonly reads: (type: string) => boolean) {}

  /** The stream's response id is known: from now on only the types read need their JSON, for good. */
  get idKnown(): boolean {
    return this.#idKnown;
  }

  /** The JSON of the next event of type `type` is needed. */
  needs(type: string): boolean {
    return !this.#idKnown || this.reads(type);
  }

  /** An event went by, with the stream state `state` after it. */
  seen(state: StreamState): void {
    this.#idKnown = state.responseId !== null;
  }
}

/** What the `/v1/responses` stream shaper refuses to pass on as bytes once started: what it reads or hides. */
const RESPONSES_REFUSALS: ShaperRefusals = Object.freeze({
  names: Object.freeze([...READS]),
  prefix: HIDDEN_PREFIX,
});

/** `POST /v1/responses` with `stream: true`. */
export function responsesStreamShaper(): Shaper {
  const items = new OutputItems();
  let started = false;
  return {
    needsJson: readsItems,
    // Once started, every event it neither drops (codex.*) nor reads goes on as it came.
    passes: (type) => started && !hidden(type) && !readsItems(type),
    refuses: () => (started ? RESPONSES_REFUSALS : null),
    event(type, json, raw) {
      if (hidden(type)) return "";
      let prefix = "";
      if (!started) {
        started = true;
        if (type !== "response.created" && json && isObject(json.response)) {
          const created = {
            type: "response.created",
            response: { ...json.response, status: "in_progress", error: null },
          };
          prefix = formatEvent(created);
        }
      }
      if (type === "response.output_item.done") items.add(json);
      if (TERMINALS.has(type) && json && isObject(json.response)) {
        const filled = items.backfill(json.response);
        if (filled !== json.response) return prefix + formatEvent({ ...json, response: filled });
      }
      return prefix + raw;
    },
    end: () => "",
  };
}

/** `POST /v1/responses` without `stream`: assembles the final Response object. */
export class ResponseCollector implements Shaper {
  readonly #items = new OutputItems();
  #final: Json | null = null;
  #created: Json | null = null;
  readonly #needs = new JsonNeeds((type) => type === "response.created" || readsItems(type));

  /**
   * The JSON of the events {@link event} reads (the start, finished output items, the end), and of
   * every event until the response id is known; not of the deltas that follow ({@link JsonNeeds}).
   */
  needsJson(type: string): boolean {
    return this.#needs.needs(type);
  }

  event(type: string, json: Json | null, _raw: string, state: StreamState): string {
    this.#needs.seen(state);
    if (!json) return "";
    if (type === "response.created" && isObject(json.response)) this.#created = json.response;
    else if (type === "response.output_item.done") this.#items.add(json);
    else if (TERMINALS.has(type) && isObject(json.response))
      this.#final = this.#items.backfill(json.response);
    return "";
  }

  end(): string {
    return "";
  }

  /** The final Response object (the terminal event's, with `output` filled), or null if there was none. */
  result(state: StreamState): Json | null {
    if (this.#final) return this.#final;
    if (!this.#created) return null;
    return this.#items.backfill({ ...this.#created, status: state.terminal ?? "failed" });
  }
}
