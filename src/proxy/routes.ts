/**
 * The proxy endpoints: `POST /backend-api/codex/responses` (Codex CLI, always SSE),
 * `POST /v1/responses` (stream or JSON), `POST /v1/chat/completions` (translated both ways),
 * `GET /v1/models` and `GET /backend-api/codex/models`. Bodies are read and checked here, so a
 * malformed one is a 400 naming the field, never a validation dump.
 *
 * @module
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { chatToResponses } from "./chat/request.ts";
import { serveCompact, validateCompactBody } from "./compact.ts";
import { proxyContext } from "./context.ts";
import { listed, MODELS_SOURCE_HEADER, modelList, openAiModel } from "./models.ts";
import { reasoningEffortOf, toUpstreamPayload, upstreamText } from "./payload.ts";
import { serveProxy } from "./serve.ts";
import {
  checkResponsesTools,
  checkTextFormat,
  optionalBoolean,
  readJsonBody,
  readJsonBodyText,
  validateResponsesBody,
} from "./validate.ts";
import { acceptResponsesSocket } from "./ws/accept.ts";

export function proxyRoutes(deps: AppDeps) {
  const ctx = proxyContext(deps);
  const responses =
    (kind: "codex" | "responses", endpoint: string) =>
    async ({ request }: { request: Request }) => {
      const { body, text } = await readJsonBodyText(request);
      validateResponsesBody(body);
      checkResponsesTools(body);
      checkTextFormat(body);
      const stream = kind === "codex" ? true : (optionalBoolean(body, "stream") ?? false);
      const payload = toUpstreamPayload(body);
      return serveProxy(ctx, request, {
        kind,
        endpoint,
        model: body.model as string,
        payload,
        payloadText: upstreamText(body, payload, text),
        stream,
        reasoningEffort: reasoningEffortOf(body),
        clientBody: body,
      });
    };
  const compact =
    (endpoint: string) =>
    async ({ request }: { request: Request }) => {
      const body = await readJsonBody(request);
      validateCompactBody(body);
      checkResponsesTools(body);
      checkTextFormat(body);
      return serveCompact(ctx, request, body, endpoint);
    };
  const detail = (summary: string) => ({ tags: ["proxy"], summary });
  return new Elysia({ name: "routes:proxy" })
    .post("/backend-api/codex/responses", responses("codex", "/backend-api/codex/responses"), {
      parse: "none",
      detail: detail("Codex CLI Responses endpoint (always SSE)"),
    })
    .post("/v1/responses", responses("responses", "/v1/responses"), {
      parse: "none",
      detail: detail("OpenAI Responses API (stream or JSON)"),
    })
    .get(
      "/backend-api/codex/responses",
      ({ request }) => acceptResponsesSocket(ctx, request, "codex", "/backend-api/codex/responses"),
      {
        detail: detail(
          "Codex CLI Responses over WebSocket: upgrade, then one `response.create` message per turn; each event comes back as a text frame",
        ),
      },
    )
    .get(
      "/v1/responses",
      ({ request }) => acceptResponsesSocket(ctx, request, "responses", "/v1/responses"),
      {
        detail: detail(
          "OpenAI Responses over WebSocket (`codex.*` events hidden): one `response.create` message per turn",
        ),
      },
    )
    .post("/backend-api/codex/responses/compact", compact("/backend-api/codex/responses/compact"), {
      parse: "none",
      detail: detail(
        "Remote compaction (Codex CLI): the history in `input` comes back as one `response.compaction` item",
      ),
    })
    .post("/v1/responses/compact", compact("/v1/responses/compact"), {
      parse: "none",
      detail: detail(
        'Remote compaction (OpenAI shape): answers `{object: "response.compaction", output: [item]}`',
      ),
    })
    .post(
      "/v1/chat/completions",
      async ({ request }) => {
        const raw = await readJsonBody(request);
        const chat = chatToResponses(raw);
        checkTextFormat(chat.body, "response_format.json_schema.schema");
        return serveProxy(ctx, request, {
          kind: "chat",
          endpoint: "/v1/chat/completions",
          model: chat.body.model as string,
          payload: toUpstreamPayload(chat.body),
          stream: chat.stream,
          includeUsage: chat.includeUsage,
          reasoningEffort: reasoningEffortOf(chat.body),
          clientBody: raw,
        });
      },
      { parse: "none", detail: detail("OpenAI Chat Completions, translated to Responses") },
    )
    .get(
      "/v1/models",
      async ({ set }) => {
        const created = Math.floor(deps.clock() / 1000);
        const list = await modelList(ctx);
        set.headers[MODELS_SOURCE_HEADER] = list.source;
        return { object: "list", data: listed(list.models).map((m) => openAiModel(m, created)) };
      },
      { detail: detail("Models (OpenAI list)") },
    )
    .get(
      "/v1/models/:id",
      async ({ params, set }) => {
        const created = Math.floor(deps.clock() / 1000);
        const list = await modelList(ctx);
        set.headers[MODELS_SOURCE_HEADER] = list.source;
        const found = listed(list.models).find((m) => m.slug === params.id);
        if (!found) {
          throw new GatewayError("model_not_found", `The model '${params.id}' does not exist`, {
            param: "model",
          });
        }
        return openAiModel(found, created);
      },
      { detail: detail("One model (OpenAI retrieve)") },
    )
    .get(
      "/backend-api/codex/models",
      async ({ set }) => {
        const list = await modelList(ctx);
        const models = list.models;
        set.headers[MODELS_SOURCE_HEADER] = list.source;
        const created = Math.floor(deps.clock() / 1000);
        return { models, object: "list", data: listed(models).map((m) => openAiModel(m, created)) };
      },
      { detail: detail("Models (Codex catalogue)") },
    );
}
