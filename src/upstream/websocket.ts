/**
 * One upstream Responses WebSocket (`wss://…/codex/responses`), used for one client socket's turns
 * in order. The ChatGPT backend keeps `store: false` responses only inside the connection that made
 * them, so a turn continuing with `previous_response_id` must go to the same connection: the socket
 * remembers the response ids it produced. Each turn's events are read through
 * {@link WsTurnEvents}, which ends at the turn's terminal event and leaves the socket open for the
 * next turn; a turn abandoned half-way closes the socket (its state is unknown after that).
 *
 * @module
 */
import { type Clock, systemClock } from "../core/clock.ts";
import { StreamIdleTimeout } from "./event-stream.ts";
import { IdleDeadline } from "./idle-deadline.ts";
import type { SseEvent } from "./sse.ts";

const TERMINAL = new Set(["response.completed", "response.failed", "response.incomplete", "error"]);
const TYPE = /^\{\s*"type"\s*:\s*"([^"\\]{1,200})"/;

/** The event type of a WebSocket message (cheap for the backend's own `{"type":…` first framing). */
export function messageType(text: string): string {
  const m = TYPE.exec(text);
  if (m) return m[1]!;
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === "object" && typeof (v as { type?: unknown }).type === "string"
      ? (v as { type: string }).type
      : "";
  } catch {
    return "";
  }
}

/** A WebSocket message as an SSE event, so the stream code treats both transports alike. */
export function messageEvent(text: string): SseEvent {
  const type = messageType(text);
  // SSE data must be one line; JSON with raw newlines is re-serialised compactly.
  const data = text.includes("\n") ? compact(text) : text;
  return { event: type || null, data, raw: type ? `event: ${type}\ndata: ${data}\n\n` : `data: ${data}\n\n` };
}

function compact(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text.replace(/\r?\n/g, " ");
  }
}

export class UpstreamSocket {
  /** Response ids produced on this connection (continuations may name them). */
  readonly responseIds = new Set<string>();
  #turn: WsTurnEvents | null = null;
  #closed = false;

  constructor(
    private readonly socket: WebSocket,
    readonly accountId: string,
    private readonly idleMs: number,
    /** The gateway's clock and timers (a turn's idle deadline runs on them). */
    private readonly timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = systemClock,
  ) {
    socket.onmessage = (e) => {
      const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
      this.#turn?.push(messageEvent(text));
    };
    socket.onclose = () => {
      this.#closed = true;
      this.#turn?.end();
    };
    socket.onerror = () => {};
  }

  get isOpen(): boolean {
    return !this.#closed && this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends one request frame and returns the events of its turn (one turn at a time). */
  send(frame: string): WsTurnEvents {
    this.#turn?.end();
    const turn = new WsTurnEvents(this.idleMs, () => this.close(1000, "turn abandoned"), this.timers);
    this.#turn = turn;
    this.socket.send(frame);
    return turn;
  }

  /** Sends a frame that gets no answer (e.g. `response.processed`). */
  notify(frame: string): void {
    if (this.isOpen) this.socket.send(frame);
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#turn?.end();
    try {
      this.socket.close(code, reason);
    } catch {
      // already closing
    }
  }
}

/**
 * The events of one turn on an upstream socket. The idle deadline is one timer per turn, moved on
 * lazily ({@link IdleDeadline}, as `UpstreamEvents` does for HTTP), not set and cleared per frame.
 */
export class WsTurnEvents {
  #buffer: SseEvent[] = [];
  #wake: ((woke: boolean) => void) | null = null;
  #ended = false;
  #terminal = false;
  readonly #deadline: IdleDeadline;

  constructor(
    private readonly idleMs: number,
    private readonly onAbandon: () => void,
    timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = systemClock,
  ) {
    this.#deadline = new IdleDeadline(idleMs, timers, () => this.#wake?.(false));
  }

  /** True once the turn's terminal event arrived. */
  get terminal(): boolean {
    return this.#terminal;
  }

  push(ev: SseEvent): void {
    if (this.#ended || this.#terminal) return;
    this.#buffer.push(ev);
    if (ev.event && TERMINAL.has(ev.event)) this.#terminal = true;
    this.#wake?.(true);
  }

  /** The connection closed: the turn is over, whatever arrived (no wait will need the deadline). */
  end(): void {
    this.#ended = true;
    this.#deadline.disarm();
    this.#wake?.(true);
  }

  async next(): Promise<SseEvent[] | null> {
    for (;;) {
      if (this.#buffer.length > 0) {
        const out = this.#buffer;
        this.#buffer = [];
        return out;
      }
      if (this.#ended || this.#terminal) {
        this.#deadline.disarm();
        return null;
      }
      this.#deadline.begin();
      const woke = await new Promise<boolean>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = null;
      this.#deadline.end();
      if (!woke) {
        this.#deadline.disarm();
        throw new StreamIdleTimeout(this.idleMs);
      }
    }
  }

  /** Stops reading. A turn left before its terminal event leaves the socket unusable: it is closed. */
  cancel(): void {
    const abandoned = !this.#terminal && !this.#ended;
    this.#ended = true;
    this.#buffer = [];
    this.#deadline.disarm();
    this.#wake?.(true);
    if (abandoned) this.onAbandon();
  }
}
