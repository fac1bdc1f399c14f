/**
 * A fake ChatGPT Codex backend: `POST /backend-api/codex/responses` answers with a scripted SSE
 * stream (text, tool calls, errors as HTTP statuses or as SSE events, slow or silent streams),
 * the same path as a WebSocket (`response.create` frames in, one event per frame out; HTTP errors
 * become `{"type":"error","status":…}` frames), and `GET /backend-api/codex/models` with a model
 * list. Scripts are per account, chosen by the `chatgpt-account-id` header. Compose with
 * `startFakeServer(fake.routes, fake.websocket)` (tests/fakes/server.ts).
 *
 * Like the real backend with `store: false`, a response can be continued (`previous_response_id`)
 * only on the WebSocket connection that produced it; on any other connection, and over HTTP, it is
 * a 400 `previous_response_not_found` (unless the fake is made with `storesResponses`).
 *
 * @module
 */
import { baseResponse, compactionEvents, frame, textEvents, toolEvents } from "./codex-events.ts";
import type { FakeRoutes, FakeWebSocket } from "./server.ts";

type Json = Record<string, unknown>;

export interface Usage {
  readonly input: number;
  readonly cached?: number;
  readonly output: number;
  readonly reasoning?: number;
}

export type Step =
  /** A text answer. `finalOutput: "empty"` (the default, like the real backend) sends `response.completed` with `output: []`. */
  (
    | {
        kind: "text";
        text: string;
        usage?: Usage;
        finalOutput?: "empty" | "full";
        rateLimits?: boolean;
        /** Response headers replacing the default live-quota headers (`x-codex-primary-*`). */
        quotaHeaders?: Record<string, string>;
      }
    | { kind: "tool_call"; name: string; arguments: string; callId?: string; usage?: Usage }
    /** A compaction answer: one `compaction` output item carrying `encryptedContent` (opaque). */
    | { kind: "compaction"; encryptedContent: string; usage?: Usage }
    | { kind: "http_error"; status: number; body: unknown; headers?: Record<string, string> }
    /** An error as the first SSE event of a 200 (`error` or `response.failed`). */
    | { kind: "sse_error"; as?: "error" | "response.failed"; error: Json }
    /**
     * Sends the answer's first delta, then the rest when `rest` settles (a test decides: no wait on a
     * wall clock), or after `delayMs` of real time when no `rest` is given.
     */
    | { kind: "slow"; text: string; delayMs?: number; rest?: Promise<unknown> }
    /** Sends `response.created` and the first delta, then nothing (for idle timeouts). */
    | { kind: "silent" }
    /** Sends the first delta, then (optionally) an `error` event, then closes without a terminal event. */
    | { kind: "truncated"; text: string; thenError?: Json }
  ) & {
    /** The answer (any kind) is held until this settles: a test decides when the upstream answers. */
    readonly after?: Promise<unknown>;
  };

export interface CodexRequest {
  readonly chatgptAccountId: string | null;
  readonly headers: Headers;
  readonly body: Json;
  /** The body as sent, for HTTP requests (numbers in the sender's spelling). */
  readonly text?: string;
  readonly transport: "http" | "websocket";
  /** The WebSocket connection (its number in `connections`), for WebSocket requests. */
  readonly connection?: number;
}

/** One upstream WebSocket connection the fake accepted. */
export interface FakeConnection {
  readonly id: number;
  readonly chatgptAccountId: string | null;
  readonly headers: Headers;
  /** Response ids made on this connection: the only ones it lets a request continue. */
  readonly responseIds: Set<string>;
  closed: boolean;
  /** Past its lifetime (see `expire`): every further turn is refused. */
  expired: boolean;
}

export interface FakeCodex {
  readonly routes: FakeRoutes;
  /** Queues one-off steps for an account; they are used in order before its standing step. */
  script(chatgptAccountId: string, ...steps: Step[]): void;
  /** The step an account answers with when its queue is empty (until changed). */
  always(chatgptAccountId: string, step: Step): void;
  /** Every `/codex/responses` call received. */
  readonly requests: CodexRequest[];
  /** The model list served; `modelsStatus` ≠ 200 makes it fail. */
  models: Json[];
  modelsStatus: number;
  /** Upstream streams that were aborted by the gateway before they finished. */
  readonly aborted: string[];
  /** Streams that ran to their end. */
  readonly finished: string[];
  /** The WebSocket endpoint (`/backend-api/codex/responses`). */
  readonly websocket: FakeWebSocket<FakeConnection>;
  /** WebSocket connections accepted so far. */
  readonly connections: FakeConnection[];
  /** When set, WebSocket upgrades are answered with this HTTP status instead (an upstream without WebSocket). */
  refuseWebSocket: number | null;
  /**
   * Ends a connection's lifetime, as the backend does after 60 minutes: its next `response.create`
   * (and every later one) is answered with a `websocket_connection_limit_reached` error frame.
   */
  expire(connectionId: number): void;
}

/** Between the parts of an answer: real milliseconds, or until a test's promise settles. */
type Pause = number | Promise<unknown>;
const wait = (p: Pause): Promise<unknown> => (typeof p === "number" ? Bun.sleep(p) : p.catch(() => {}));

const enc = new TextEncoder();
export function fakeCodex(
  defaultStep: Step = { kind: "text", text: "Hello from the fake Codex backend." },
  opts: { storesResponses?: boolean } = {},
): FakeCodex {
  const connections: FakeConnection[] = [];
  const queues = new Map<string, Step[]>();
  const standing = new Map<string, Step>();
  const requests: CodexRequest[] = [];
  const aborted: string[] = [];
  const finished: string[] = [];
  let n = 0;

  const sse = (
    id: string,
    parts: Json[][],
    pause: Pause,
    headers: Record<string, string> = {},
    close = true,
  ) => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        for (let i = 0; i < parts.length; i++) {
          if (i > 0) await wait(pause);
          if (cancelled) return;
          c.enqueue(enc.encode(parts[i]!.map(frame).join("")));
        }
        if (!close) return;
        finished.push(id);
        c.close();
      },
      cancel() {
        cancelled = true;
        aborted.push(id);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream", ...headers } });
  };

  const fake: FakeCodex = {
    requests,
    aborted,
    finished,
    models: [
      { slug: "gpt-5.2", display_name: "GPT-5.2", supported_in_api: true, visibility: "list" },
      { slug: "gpt-5.2-codex", display_name: "GPT-5.2 Codex", supported_in_api: true, visibility: "list" },
      { slug: "internal-only", display_name: "Hidden", supported_in_api: false, visibility: "hide" },
    ],
    modelsStatus: 200,
    script(acc, ...steps) {
      queues.set(acc, [...(queues.get(acc) ?? []), ...steps]);
    },
    always(acc, step) {
      standing.set(acc, step);
    },
    routes: {
      "GET /backend-api/codex/models": () =>
        fake.modelsStatus === 200
          ? Response.json({ models: fake.models })
          : Response.json({ error: { message: "models unavailable" } }, { status: fake.modelsStatus }),
      "POST /backend-api/codex/responses": async (request) => {
        const acc = request.headers.get("chatgpt-account-id");
        const text = await request.text();
        const body = JSON.parse(text) as Json;
        requests.push({ chatgptAccountId: acc, headers: request.headers, body, text, transport: "http" });
        if (typeof body.previous_response_id === "string" && !opts.storesResponses) {
          return Response.json(notFound(body.previous_response_id), { status: 400 });
        }
        const id = `resp_fake${++n}`;
        const step = stepFor(acc, body);
        if (step.after) await step.after.catch(() => {});
        const p = plan(step, id, String(body.model ?? "gpt-5.2"));
        if ("httpError" in p) {
          const e = p.httpError;
          return new Response(typeof e.body === "string" ? e.body : JSON.stringify(e.body), {
            status: e.status,
            headers: { "content-type": "application/json", ...e.headers },
          });
        }
        return sse(id, p.parts, p.pause, p.headers, p.close);
      },
    },
    connections,
    refuseWebSocket: null,
    expire(connectionId) {
      const conn = connections[connectionId];
      if (!conn) throw new Error(`no connection ${connectionId}`);
      conn.expired = true;
    },
    websocket: {
      path: "/backend-api/codex/responses",
      accept(request) {
        if (fake.refuseWebSocket !== null) {
          return Response.json({ error: { message: "no websocket here" } }, { status: fake.refuseWebSocket });
        }
        const conn: FakeConnection = {
          id: connections.length,
          chatgptAccountId: request.headers.get("chatgpt-account-id"),
          headers: request.headers,
          responseIds: new Set(),
          closed: false,
          expired: false,
        };
        connections.push(conn);
        return { data: conn, headers: { "x-codex-turn-state": `upstream-ts-${conn.id}` } };
      },
      close(ws) {
        ws.data.closed = true;
      },
      message(ws, text) {
        const conn = ws.data;
        const send = (e: Json) => {
          if (!conn.closed) ws.send(JSON.stringify(e));
        };
        let msg: Json;
        try {
          msg = JSON.parse(text) as Json;
        } catch {
          send({ type: "error", status: 400, error: { type: "invalid_request_error", message: "bad json" } });
          return;
        }
        if (msg.type !== "response.create") {
          send({
            type: "error",
            status: 400,
            error: { type: "invalid_request_error", message: "unknown type" },
          });
          return;
        }
        const { type: _t, ...body } = msg;
        requests.push({
          chatgptAccountId: conn.chatgptAccountId,
          headers: conn.headers,
          body,
          transport: "websocket",
          connection: conn.id,
        });
        if (conn.expired) {
          send({
            type: "error",
            status: 400,
            error: {
              type: "invalid_request_error",
              code: "websocket_connection_limit_reached",
              message:
                "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.",
            },
          });
          return;
        }
        const prev = body.previous_response_id;
        if (typeof prev === "string" && !conn.responseIds.has(prev)) {
          send({ type: "error", status: 400, ...notFound(prev) });
          return;
        }
        const id = `resp_fake${++n}`;
        const model = String(body.model ?? "gpt-5.2");
        // A warm-up turn: an empty response that anchors the next one.
        const p =
          body.generate === false
            ? {
                parts: [
                  [
                    { type: "response.created", response: baseResponse(id, model, "in_progress") },
                    {
                      type: "response.completed",
                      response: {
                        ...baseResponse(id, model, "completed"),
                        usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
                      },
                    },
                  ],
                ],
                pause: 0,
                headers: {},
                close: true,
              }
            : plan(stepFor(conn.chatgptAccountId, body), id, model);
        if ("httpError" in p) {
          const e = p.httpError;
          const parsed = typeof e.body === "string" ? { error: { message: e.body } } : (e.body as Json);
          send({ type: "error", status: e.status, ...parsed, headers: e.headers ?? {} });
          return;
        }
        void (async () => {
          for (let i = 0; i < p.parts.length; i++) {
            if (i > 0) await wait(p.pause);
            if (conn.closed) {
              aborted.push(id);
              return;
            }
            for (const e of p.parts[i]!) {
              send(e);
              if (e.type === "response.completed") conn.responseIds.add(id);
            }
          }
          if (!p.close) return;
          const last = p.parts.at(-1)?.at(-1);
          if (!["response.completed", "response.failed", "error"].includes(String(last?.type))) {
            // A stream cut short: the connection drops.
            ws.close(1011, "truncated");
            return;
          }
          finished.push(id);
        })();
      },
    },
  };

  /**
   * The account's next scripted step; else, for a request whose input ends with a compaction
   * trigger, a compaction (as the backend answers one); else its standing step or the default.
   */
  const stepFor = (acc: string | null, body?: Json): Step => {
    const queued = acc ? queues.get(acc)?.shift() : undefined;
    if (queued) return queued;
    const last = Array.isArray(body?.input) ? (body.input as Json[]).at(-1) : undefined;
    if (last?.type === "compaction_trigger") {
      return {
        kind: "compaction",
        encryptedContent: `fake-compaction-of-${(body!.input as unknown[]).length - 1}-items`,
      };
    }
    return (acc && standing.get(acc)) || defaultStep;
  };

  type Plan =
    | { parts: Json[][]; pause: Pause; headers: Record<string, string>; close: boolean }
    | { httpError: { status: number; body: unknown; headers?: Record<string, string> } };

  const plan = (step: Step, id: string, model: string): Plan => {
    switch (step.kind) {
      case "text": {
        const { head, tail } = textEvents(id, model, step.text, {
          usage: step.usage,
          full: step.finalOutput === "full",
          rateLimits: step.rateLimits,
        });
        return {
          parts: [[...head, ...tail]],
          pause: 0,
          headers: step.quotaHeaders ?? {
            "x-codex-primary-used-percent": "12.5",
            "x-codex-primary-window-minutes": "300",
          },
          close: true,
        };
      }
      case "slow": {
        const { head, tail } = textEvents(id, model, step.text, {});
        return { parts: [head, tail], pause: step.rest ?? step.delayMs ?? 0, headers: {}, close: true };
      }
      case "silent": {
        const { head } = textEvents(id, model, "...", {});
        return { parts: [head], pause: 0, headers: {}, close: false };
      }
      case "truncated": {
        const { head } = textEvents(id, model, step.text, {});
        return {
          parts: [step.thenError ? [...head, { type: "error", error: step.thenError }] : head],
          pause: 0,
          headers: {},
          close: true,
        };
      }
      case "tool_call":
        return { parts: [toolEvents(id, model, step)], pause: 0, headers: {}, close: true };
      case "compaction":
        return {
          parts: [compactionEvents(id, model, step)],
          pause: 0,
          headers: { "x-codex-primary-used-percent": "40", "x-codex-primary-window-minutes": "300" },
          close: true,
        };
      case "http_error":
        return { httpError: { status: step.status, body: step.body, headers: step.headers } };
      case "sse_error": {
        const ev =
          step.as === "response.failed"
            ? {
                type: "response.failed",
                response: { ...baseResponse(id, model, "failed"), error: step.error },
              }
            : { type: "error", error: step.error };
        return { parts: [[ev]], pause: 0, headers: {}, close: true };
      }
    }
  };
  return fake;
}

/** The backend's answer to a continuation of a response it does not hold. */
function notFound(id: string): Json {
  return {
    error: {
      type: "invalid_request_error",
      code: "previous_response_not_found",
      message: `Previous response with id '${id}' not found.`,
      param: "previous_response_id",
    },
  };
}
