/**
 * The proxy endpoints as the web framework sees them: `POST /backend-api/codex/responses` (Codex
 * CLI, always SSE), `POST /v1/responses` (stream or JSON), `POST /v1/chat/completions` (translated
 * both ways), the two compaction routes, the Responses WebSocket upgrades, `GET /v1/models` and
 * `GET /backend-api/codex/models`. The POST routes are served by the proxy pipeline
 * (`src/proxy/pipeline.ts`), which the gateway calls directly, without the framework's dispatch;
 * they are declared here for the OpenAPI document, and answer through the same pipeline should the
 * framework ever be handed one.
 *
 * @module
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { requestInfo } from "../core/request-info.ts";
import { proxyContext } from "./context.ts";
import { listed, MODELS_SOURCE_HEADER, modelList, openAiModel } from "./models.ts";
import { HttpRequestContext, proxyRoutes as pipelineRoutes, serveProxyRequest } from "./pipeline.ts";
import { acceptResponsesSocket } from "./ws/accept.ts";

export function proxyRoutes(deps: AppDeps) {
  const ctx = proxyContext(deps);
  const detail = (summary: string) => ({ tags: ["proxy"], summary });
  let app = new Elysia({ name: "routes:proxy" }).use(requestInfo);
  for (const route of pipelineRoutes) {
    app = app.post(
      route.path,
      // Admitted by the framework's request hook already: the pipeline skips its admission step.
      async ({ request, info }) => {
        const pipe = HttpRequestContext.admitted(ctx, route, request, info);
        try {
          return await serveProxyRequest(pipe);
        } finally {
          info.accessLogged = pipe.accessLogged;
        }
      },
      { parse: "none", detail: detail(route.summary) },
    );
  }
  return app
    .get(
      "/backend-api/codex/responses",
      ({ request, info }) =>
        acceptResponsesSocket(ctx, request, info, "codex", "/backend-api/codex/responses"),
      {
        detail: detail(
          "Codex CLI Responses over WebSocket: upgrade, then one `response.create` message per turn; each event comes back as a text frame",
        ),
      },
    )
    .get(
      "/v1/responses",
      ({ request, info }) => acceptResponsesSocket(ctx, request, info, "responses", "/v1/responses"),
      {
        detail: detail(
          "OpenAI Responses over WebSocket (`codex.*` events hidden): one `response.create` message per turn",
        ),
      },
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
