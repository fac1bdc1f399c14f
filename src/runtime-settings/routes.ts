/**
 * `GET /api/settings` and `PUT /api/settings`: the runtime settings with their optimistic version.
 * A PUT with `expectedVersion` that no longer matches answers 409 `settings_conflict`.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import { audit, auditContext } from "../access/audit.ts";
import type { AppDeps } from "../app/deps.ts";
import { infoOf } from "../app/request-info.ts";
import { routingStrategies } from "../settings/schema.ts";
import { rejectUnknownFields } from "./strict-body.ts";

// Literal unions, not t.UnionEnum: Elysia fills an optional UnionEnum body field with its first value.
const Strategy = t.Union(
  [
    t.Literal(routingStrategies[0]),
    t.Literal(routingStrategies[1]),
    t.Literal(routingStrategies[2]),
    t.Literal(routingStrategies[3]),
  ],
  { description: "capacity_weighted (default), usage_weighted, round_robin or fill_first" },
);
const Ttl = t.Integer({ minimum: 1, maximum: 30 * 24 * 3600 });

const Document = t.Object({
  routingStrategy: Strategy,
  stickyTtlSeconds: Ttl,
  apiKeyAuthEnabled: t.Boolean({ description: "Require an API key from every proxy client" }),
  version: t.Integer({ minimum: 0, description: "Increases with every change; 0 = never changed" }),
});
const AdminError = t.Object({ error: t.Object({ code: t.String(), message: t.String() }) });

export function runtimeSettingsRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:settings" })
    .get("/api/settings", () => deps.runtimeSettings.get(), {
      detail: { tags: ["settings"], summary: "Runtime settings (defaults come from the environment)" },
      response: { 200: Document },
    })
    .put(
      "/api/settings",
      async ({ body, request }) => {
        const { expectedVersion, ...patch } = body;
        const updated = await deps.runtimeSettings.update(patch, expectedVersion);
        await audit(deps.store.db, {
          action: "settings.update",
          ...auditContext(infoOf(request)),
          details: patch,
        });
        return updated;
      },
      {
        transform: rejectUnknownFields([
          "expectedVersion",
          "routingStrategy",
          "stickyTtlSeconds",
          "apiKeyAuthEnabled",
        ]),
        body: t.Object(
          {
            expectedVersion: t.Optional(
              t.Integer({ minimum: 0, description: "The version you read; refused with 409 if it changed" }),
            ),
            routingStrategy: t.Optional(t.Union([Strategy, t.Null()])),
            stickyTtlSeconds: t.Optional(t.Union([Ttl, t.Null()])),
            apiKeyAuthEnabled: t.Optional(t.Union([t.Boolean(), t.Null()])),
          },
          {
            additionalProperties: false,
            description: "Fields left out keep their value; null restores the default",
          },
        ),
        detail: { tags: ["settings"], summary: "Change runtime settings (optimistic concurrency)" },
        response: { 200: Document, 400: AdminError, 409: AdminError },
      },
    );
}
