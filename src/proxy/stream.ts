/**
 * Pass-through of an open upstream stream: each upstream chunk is split into events as it arrives,
 * observed (usage, response id, errors, live quota), shaped for the client's endpoint, and sent on
 * at once. Upstream `error` events become `response.failed`; a stream that ends without a terminal
 * event, or goes silent past the idle timeout, ends with a synthetic `response.failed`.
 *
 * @module
 */
import { isUtf8 } from "node:buffer";
import { transportMessage } from "../core/failures.ts";
import type { EpochMs } from "../core/types.ts";
import { decodeMidStream, StreamIdleTimeout } from "../upstream/event-stream.ts";
import { eventJson, formatEvent, parseBlock, type SseEvent } from "../upstream/sse.ts";
import { type OpenStream, typeOf } from "./attempt.ts";
import type { ProxyContext } from "./context.ts";
import { eventError } from "./failure.ts";
import { quotaFromEvent } from "./live-quota.ts";
import { isObject, type Json } from "./validate.ts";

export interface Usage {
  readonly inputTokens: number | null;
  readonly cachedInputTokens: number | null;
  readonly outputTokens: number | null;
  readonly reasoningTokens: number | null;
  readonly totalTokens: number | null;
}

export interface StreamState {
  responseId: string | null;
  usage: Usage | null;
  terminal: "completed" | "incomplete" | "failed" | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** Turns upstream events into what one endpoint's client expects. */
export interface Shaper {
  /** True when `event` needs the parsed JSON of events of this type. */
  needsJson(type: string): boolean;
  /** Text to send for one event ("" drops it). */
  event(type: string, json: Json | null, raw: string, state: StreamState): string;
  /** Text to send once the stream is over (after its terminal event). */
  end(state: StreamState): string;
  /**
   * True when `event` returns `raw` for every type and `end` returns "": events the gateway does
   * not read may then go to the client as the upstream's own bytes (see ProxyStream.stepBytes).
   */
  readonly passThrough?: boolean;
}

/** Types whose JSON the observer itself reads. */
const OBSERVED = new Set([
  "response.created",
  "response.completed",
  "response.incomplete",
  "response.failed",
  "error",
  "codex.rate_limits",
]);

const n = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** Usage of a Response object (`response.usage`). */
export function usageOf(response: unknown): Usage | null {
  if (!isObject(response) || !isObject(response.usage)) return null;
  const u = response.usage;
  const inDet = isObject(u.input_tokens_details) ? u.input_tokens_details : {};
  const outDet = isObject(u.output_tokens_details) ? u.output_tokens_details : {};
  return {
    inputTokens: n(u.input_tokens),
    cachedInputTokens: n(inDet.cached_tokens),
    outputTokens: n(u.output_tokens),
    reasoningTokens: n(outDet.reasoning_tokens),
    totalTokens: n(u.total_tokens),
  };
}

/** A `response.failed` event carrying `error`. */
export function failedEvent(
  error: { code: string; message: string; type?: string } & Json,
  responseId: string | null,
  now: EpochMs,
): Json {
  return {
    type: "response.failed",
    response: {
      id: responseId ?? `resp_${crypto.randomUUID().replace(/-/g, "")}`,
      object: "response",
      created_at: Math.floor(now / 1000),
      status: "failed",
      error: { type: "server_error", ...error },
      incomplete_details: null,
      output: [],
    },
  };
}

export type FinishStatus = "success" | "error" | "cancelled";

const encoder = new TextEncoder();

const EVENT_PREFIX = new TextEncoder().encode("event: ");
const DATA_PREFIX = new TextEncoder().encode("data: ");
/** `event:` names of {@link OBSERVED} types, as bytes, by length (to compare without decoding). */
const OBSERVED_BYTES = [...OBSERVED].map((t) => new TextEncoder().encode(t));

function startsWith(data: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.length > data.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * Whether the block `data[start, end)` is an event the gateway only passes on: the backend's own
 * framing (one `event:` line, one `data:` line) with a type the observer does not read.
 */
function passable(data: Uint8Array, start: number, end: number): boolean {
  if (!startsWith(data, start, EVENT_PREFIX)) return false;
  const nameStart = start + EVENT_PREFIX.length;
  const nl = data.indexOf(10, nameStart);
  if (nl < 0 || nl >= end || !startsWith(data, nl + 1, DATA_PREFIX)) return false;
  const second = data.indexOf(10, nl + 1);
  if (second >= 0 && second < end) return false;
  const len = nl - nameStart;
  for (const name of OBSERVED_BYTES) {
    if (name.length !== len) continue;
    let same = true;
    for (let i = 0; i < len; i++) {
      if (data[nameStart + i] !== name[i]) {
        same = false;
        break;
      }
    }
    if (same) return false;
  }
  return true;
}

/** Bytes as the text path would send them: the same bytes unless they are not valid UTF-8. */
function verbatim(bytes: Uint8Array): Uint8Array {
  return isUtf8(bytes) ? bytes : encoder.encode(decodeMidStream(bytes));
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export class ProxyStream {
  readonly state: StreamState = {
    responseId: null,
    usage: null,
    terminal: null,
    errorCode: null,
    errorMessage: null,
  };
  #prelude: SseEvent[] | null;
  #ended = false;
  #finished = false;
  /** The upstream body ended by itself (nothing to abort). */
  #upstreamDone = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly open: OpenStream,
    private readonly shaper: Shaper,
    private readonly onFinish: (state: StreamState, status: FinishStatus) => void,
  ) {
    this.#prelude = [...open.prelude];
  }

  /** The client text for the next upstream chunk ("" when nothing to send yet), or null when done. */
  async step(): Promise<string | null> {
    if (this.#ended) {
      this.#finish(this.state.terminal === "completed" ? "success" : "error");
      return null;
    }
    if (this.#prelude) {
      const batch = this.#prelude;
      this.#prelude = null;
      return this.#shape(batch);
    }
    let batch: SseEvent[] | null;
    try {
      batch = await this.open.events.next();
    } catch (e) {
      if (this.#finished) return null;
      return this.#broken(e);
    }
    if (batch === null) {
      // The body ended by itself: nothing to cancel, and the connection can go back to the pool.
      this.#upstreamDone = true;
      return this.#close("stream_incomplete", "Upstream stream ended before a terminal event");
    }
    return this.#shape(batch);
  }

  /**
   * Like {@link step}, for a pass-through shaper: the client bytes of the next upstream chunk.
   * Events the gateway does not read go out as the upstream's own bytes, unparsed; the few it
   * reads (ids, usage, errors, rate limits) and anything framed unusually (comments, data-only
   * events, CR line ends) take the text path, so the client receives exactly what {@link step}
   * would have produced.
   */
  async stepBytes(): Promise<string | Uint8Array | null> {
    const events = this.open.events;
    if (!this.shaper.passThrough || this.#ended || this.#prelude || !events.nextBytes) return this.step();
    let x: Uint8Array | SseEvent[] | null;
    try {
      x = await events.nextBytes();
    } catch (e) {
      if (this.#finished) return null;
      return this.#broken(e);
    }
    if (x === null) {
      // The body ended by itself: nothing to cancel, and the connection can go back to the pool.
      this.#upstreamDone = true;
      return this.#close("stream_incomplete", "Upstream stream ended before a terminal event");
    }
    if (Array.isArray(x)) return this.#shape(x);
    const data = x;
    let parts: Uint8Array[] | null = null;
    let runStart = 0;
    let pos = 0;
    while (pos < data.length) {
      let nl = data.indexOf(10, pos);
      while (data[nl + 1] !== 10) nl = data.indexOf(10, nl + 1);
      if (!passable(data, pos, nl)) {
        parts ??= [];
        if (pos > runStart) parts.push(verbatim(data.subarray(runStart, pos)));
        const ev = parseBlock(decodeMidStream(data.subarray(pos, nl)));
        if (ev) {
          const text = this.#shape([ev]);
          if (text !== "") parts.push(encoder.encode(text));
        }
        runStart = nl + 2;
      }
      pos = nl + 2;
    }
    // The common case: the whole chunk is passed on as it came.
    if (parts === null) return verbatim(data);
    if (pos > runStart) parts.push(verbatim(data.subarray(runStart, pos)));
    return parts.length === 0 ? "" : concatBytes(parts);
  }

  /** The client went away: stop the upstream call and release everything. */
  abort(): void {
    this.#ended = true;
    this.#finish("cancelled");
  }

  #broken(e: unknown): string {
    const idle = e instanceof StreamIdleTimeout;
    return this.#close(
      idle ? "stream_idle_timeout" : "stream_incomplete",
      idle
        ? `Upstream sent nothing for ${this.ctx.deps.settings.streamIdleTimeoutSeconds} s`
        : `Upstream stream broke: ${transportMessage(e)}`,
    );
  }

  #close(code: string, message: string): string {
    let out = "";
    if (this.state.terminal === null) {
      const json = failedEvent({ code, message }, this.state.responseId, this.ctx.deps.clock());
      out = this.#one("response.failed", json, formatEvent(json));
    }
    this.#ended = true;
    return out + this.shaper.end(this.state);
  }

  #shape(batch: readonly SseEvent[]): string {
    let out = "";
    for (const ev of batch) {
      const type = typeOf(ev);
      let json: Json | null = null;
      const raw = ev.raw;
      if (OBSERVED.has(type) || this.shaper.needsJson(type)) json = eventJson(ev);
      if (type === "error") {
        const err = json ? eventError(json) : {};
        const failed = failedEvent(
          {
            ...err,
            code: String(err.code ?? err.type ?? "upstream_error").toLowerCase(),
            message: String(err.message ?? "Upstream error"),
          },
          this.state.responseId,
          this.ctx.deps.clock(),
        );
        out += this.#one("response.failed", failed, formatEvent(failed));
        continue;
      }
      out += this.#one(type, json, raw);
    }
    return out;
  }

  #one(type: string, json: Json | null, raw: string): string {
    const s = this.state;
    if (json) {
      const resp = isObject(json.response) ? json.response : null;
      if (resp && typeof resp.id === "string") s.responseId ??= resp.id;
      if (type === "response.completed" || type === "response.incomplete") {
        s.terminal = type === "response.completed" ? "completed" : "incomplete";
        s.usage = usageOf(resp) ?? s.usage;
        if (type === "response.incomplete") s.errorCode = "response_incomplete";
      } else if (type === "response.failed") {
        s.terminal = "failed";
        const err = eventError(json);
        s.errorCode = typeof err.code === "string" ? err.code : "upstream_error";
        s.errorMessage = typeof err.message === "string" ? err.message : null;
        s.usage = usageOf(resp) ?? s.usage;
      } else if (type === "codex.rate_limits") {
        const q = quotaFromEvent(json);
        if (q) this.ctx.quota.record(this.open.account.id, q, this.ctx.deps.clock());
      }
    }
    return this.shaper.event(type, json, raw, s);
  }

  #finish(status: FinishStatus): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.#upstreamDone) {
      this.open.events.cancel();
      this.open.controller.abort();
    }
    this.open.lease.release();
    this.onFinish(this.state, status);
  }
}

/** The SSE comment sent while the upstream is silent (clients and proxies ignore comments). */
export const KEEPALIVE = ": keepalive\n\n";

/**
 * The client body of a stream; cancelling it (client gone) aborts the upstream call. With
 * `keepaliveMs` > 0, a {@link KEEPALIVE} comment goes out whenever the upstream has been silent
 * that long, so clients and proxies between do not give up on a quiet stream.
 */
export function toReadableStream(ps: ProxyStream, keepaliveMs = 0): ReadableStream<Uint8Array> {
  let pending: Promise<string | Uint8Array | null> | null = null;
  const keepalive = encoder.encode(KEEPALIVE);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            pending ??= ps.stepBytes();
            let text: string | Uint8Array | null | typeof KEEPALIVE_TICK;
            if (keepaliveMs > 0) {
              let timer: ReturnType<typeof setTimeout> | undefined;
              const tick = new Promise<typeof KEEPALIVE_TICK>((r) => {
                timer = setTimeout(() => r(KEEPALIVE_TICK), keepaliveMs);
              });
              text = await Promise.race([pending, tick]);
              clearTimeout(timer);
            } else text = await pending;
            if (text === KEEPALIVE_TICK) {
              controller.enqueue(keepalive);
              return;
            }
            pending = null;
            if (text === null) {
              controller.close();
              return;
            }
            if (typeof text !== "string") {
              controller.enqueue(text);
              return;
            }
            if (text !== "") {
              controller.enqueue(encoder.encode(text));
              return;
            }
          }
        } catch (e) {
          ps.abort();
          controller.error(e);
        }
      },
      cancel() {
        ps.abort();
      },
    },
    { highWaterMark: 0 },
  );
}

const KEEPALIVE_TICK = Symbol("keepalive");

/** Runs a stream to its end without a client body (non-streaming answers are assembled by the shaper). */
export async function drain(ps: ProxyStream): Promise<void> {
  while ((await ps.step()) !== null) {
    // the shaper collects what it needs
  }
}
