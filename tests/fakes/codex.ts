/**
 * A fake ChatGPT Codex backend: `POST /backend-api/codex/responses` answers with a scripted SSE
 * stream (text, tool calls, errors as HTTP statuses or as SSE events, slow or silent streams) and
 * `GET /backend-api/codex/models` with a model list. Scripts are per account, chosen by the
 * `chatgpt-account-id` header. Compose with `startFakeServer` (tests/fakes/server.ts).
 *
 * @module
 */
import { baseResponse, compactionEvents, frame, textEvents, toolEvents } from "./codex-events.ts";
import type { FakeRoutes } from "./server.ts";

type Json = Record<string, unknown>;

export interface Usage {
  readonly input: number;
  readonly cached?: number;
  readonly output: number;
  readonly reasoning?: number;
}

export type Step =
  /** A text answer. `finalOutput: "empty"` (the default, like the real backend) sends `response.completed` with `output: []`. */
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
  /** Sends the answer's first delta, waits `delayMs`, then the rest. */
  | { kind: "slow"; text: string; delayMs: number }
  /** Sends `response.created` and the first delta, then nothing (for idle timeouts). */
  | { kind: "silent" }
  /** Sends the first delta, then (optionally) an `error` event, then closes without a terminal event. */
  | { kind: "truncated"; text: string; thenError?: Json };

export interface CodexRequest {
  readonly chatgptAccountId: string | null;
  readonly headers: Headers;
  readonly body: Json;
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
}

const enc = new TextEncoder();
export function fakeCodex(
  defaultStep: Step = { kind: "text", text: "Hello from the fake Codex backend." },
): FakeCodex {
  const queues = new Map<string, Step[]>();
  const standing = new Map<string, Step>();
  const requests: CodexRequest[] = [];
  const aborted: string[] = [];
  const finished: string[] = [];
  let n = 0;

  const sse = (
    id: string,
    parts: Json[][],
    delayMs: number,
    headers: Record<string, string> = {},
    close = true,
  ) => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        for (let i = 0; i < parts.length; i++) {
          if (i > 0) await Bun.sleep(delayMs);
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
        const body = (await request.json()) as Json;
        requests.push({ chatgptAccountId: acc, headers: request.headers, body });
        const step = (acc && queues.get(acc)?.shift()) || (acc && standing.get(acc)) || defaultStep;
        const id = `resp_fake${++n}`;
        const model = String(body.model ?? "gpt-5.2");
        switch (step.kind) {
          case "text": {
            const { head, tail } = textEvents(id, model, step.text, {
              usage: step.usage,
              full: step.finalOutput === "full",
              rateLimits: step.rateLimits,
            });
            return sse(
              id,
              [[...head, ...tail]],
              0,
              step.quotaHeaders ?? {
                "x-codex-primary-used-percent": "12.5",
                "x-codex-primary-window-minutes": "300",
              },
            );
          }
          case "slow": {
            const { head, tail } = textEvents(id, model, step.text, {});
            return sse(id, [head, tail], step.delayMs);
          }
          case "silent": {
            const { head } = textEvents(id, model, "...", {});
            return sse(id, [head], 0, {}, false);
          }
          case "truncated": {
            const { head } = textEvents(id, model, step.text, {});
            return sse(id, [step.thenError ? [...head, { type: "error", error: step.thenError }] : head], 0);
          }
          case "tool_call":
            return sse(id, [toolEvents(id, model, step)], 0);
          case "compaction":
            return sse(id, [compactionEvents(id, model, step)], 0, {
              "x-codex-primary-used-percent": "40",
              "x-codex-primary-window-minutes": "300",
            });
          case "http_error":
            return new Response(typeof step.body === "string" ? step.body : JSON.stringify(step.body), {
              status: step.status,
              headers: { "content-type": "application/json", ...step.headers },
            });
          case "sse_error": {
            const ev =
              step.as === "response.failed"
                ? {
                    type: "response.failed",
                    response: { ...baseResponse(id, model, "failed"), error: step.error },
                  }
                : { type: "error", error: step.error };
            return sse(id, [[ev]], 0);
          }
        }
      },
    },
  };
  return fake;
}
