/**
 * `GET /api/settings` and `PUT /api/settings`: the runtime settings with their optimistic version.
 * A PUT with `expectedVersion` that no longer matches answers 409 `settings_conflict`.
 *
 * `GET/PUT /api/settings/access` is the same endpoint narrowed to `apiKeyAuthEnabled` (the
 * dashboard's switch): one body schema, one handler, one check; each change writes its audit row in
 * the settings change's own transaction.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { type RequestInfo, requestInfo } from "../core/request-info.ts";
import { ErrorBody as AdminError } from "../core/schemas.ts";
import { routingStrategies } from "../settings/schema.ts";
import { auditContext } from "../store/audit.ts";
import type { RuntimeSettingsDocument, RuntimeSettingsPatch } from "./store.ts";

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

const ApiKeyAuth = t.Boolean({
  description:
    "On: every proxy request needs a valid API key. Off (default): only clients on this machine may use the proxy, keyless",
});

const Document = t.Object({
  routingStrategy: Strategy,
  stickyTtlSeconds: Ttl,
  apiKeyAuthEnabled: ApiKeyAuth,
  version: t.Integer({ minimum: 0, description: "Increases with every change; 0 = never changed" }),
});

/** The fields of a change: a value sets it, null restores the environment default. */
const patchFields = {
  expectedVersion: t.Optional(
    t.Integer({ minimum: 0, description: "The version you read; refused with 409 if it changed" }),
  ),
  routingStrategy: t.Optional(t.Union([Strategy, t.Null()])),
  stickyTtlSeconds: t.Optional(t.Union([Ttl, t.Null()])),
  apiKeyAuthEnabled: t.Optional(t.Union([ApiKeyAuth, t.Null()])),
};
const AccessSettings = t.Object({ apiKeyAuthEnabled: ApiKeyAuth });

export function runtimeSettingsRoutes(deps: AppDeps) {
  /** The one write path of both endpoints: validated by `patchFields`, audited in its transaction. */
  const change = (
    info: RequestInfo,
    body: RuntimeSettingsPatch & { expectedVersion?: number | undefined },
    auditOf: (
      patch: RuntimeSettingsPatch,
      before: RuntimeSettingsDocument,
    ) => {
      action: string;
      details: Record<string, unknown>;
    },
  ) => {
    const { expectedVersion, ...patch } = body;
    return deps.runtimeSettings.update(patch, expectedVersion, (before) => ({
      ...auditOf(patch, before),
      ...auditContext(info),
    }));
  };
  return new Elysia({ name: "routes:settings" })
    .use(requestInfo)
    .get("/api/settings", () => deps.runtimeSettings.get(), {
      detail: { tags: ["settings"], summary: "Runtime settings (defaults come from the environment)" },
      response: { 200: Document },
    })
    .put(
      "/api/settings",
      ({ body, info }) => change(info, body, (patch) => ({ action: "settings.update", details: patch })),
      {
        body: t.Object(patchFields, {
          additionalProperties: false,
          description: "Fields left out keep their value; null restores the default",
        }),
        detail: { tags: ["settings"], summary: "Change runtime settings (optimistic concurrency)" },
        response: { 200: Document, 400: AdminError, 409: AdminError },
      },
    )
    .get(
      "/api/settings/access",
      async () => ({ apiKeyAuthEnabled: (await deps.runtimeSettings.get()).apiKeyAuthEnabled }),
      {
        detail: { tags: ["settings"], summary: "Proxy authentication policy" },
        response: { 200: AccessSettings },
      },
    )
    .put(
      "/api/settings/access",
      async ({ body, info }) => {
        const doc = await change(info, body, (_patch, before) => ({
          action: "settings.changed",
          details: { apiKeyAuthEnabled: { from: before.apiKeyAuthEnabled, to: body.apiKeyAuthEnabled } },
        }));
        return { apiKeyAuthEnabled: doc.apiKeyAuthEnabled };
      },
      {
        body: AccessSettings,
        detail: {
          tags: ["settings"],
          summary: "Change the proxy authentication policy (PUT /api/settings narrowed to one field)",
        },
        response: { 200: AccessSettings, 400: AdminError },
      },
    );
}
