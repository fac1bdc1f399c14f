/**
 * `/api/api-keys`: create, list, read, update, delete and regenerate API keys. The plain key
 * appears only in the answers of create and regenerate. Every change is audited.
 *
 * @module
 */
import { Elysia, type Static, t } from "elysia";
import type { AppDeps } from "../../core/deps.ts";
import { GatewayError } from "../../core/errors.ts";
import { requestInfo } from "../../core/request-info.ts";
import { auditContext, audited } from "../../store/audit.ts";
import { type LimitSpec, limitStates } from "./limits.ts";
import {
  type ApiKeyRecord,
  createApiKey,
  deleteApiKey,
  getApiKey,
  listApiKeys,
  regenerateApiKey,
  updateApiKey,
} from "./repository.ts";
import {
  AdminError,
  ApiKeyView,
  ApiKeyWithSecret,
  CreateBody,
  type LimitInput,
  UpdateBody,
} from "./schemas.ts";

function checkLimits(limits: readonly Static<typeof LimitInput>[] | undefined): LimitSpec[] | undefined {
  if (!limits) return undefined;
  const seen = new Set<string>();
  for (const l of limits) {
    const k = `${l.limitType}/${l.limitWindow}`;
    if (seen.has(k))
      throw new GatewayError("validation_error", `Duplicate limit ${l.limitType} per ${l.limitWindow}`, {
        param: "limits",
      });
    seen.add(k);
  }
  return limits as LimitSpec[];
}

function checkName(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const n = name.trim();
  if (n === "") throw new GatewayError("validation_error", "name must not be blank", { param: "name" });
  return n;
}

export function apiKeyRoutes(deps: AppDeps) {
  const db = deps.store.db;
  const view = async (k: ApiKeyRecord) => {
    const states = await limitStates(db, k, deps.clock());
    return {
      ...k,
      allowedModels: k.allowedModels ? [...k.allowedModels] : null,
      limits: states.map((s) => ({
        limitType: s.limitType,
        limitWindow: s.limitWindow,
        maxValue: s.maxValue,
        currentValue: s.currentValue,
        remainingValue: s.remainingValue,
        resetsAt: s.resetsAt,
      })),
    };
  };
  const mustGet = async (id: string) => {
    const k = await getApiKey(db, id);
    if (!k) throw new GatewayError("not_found", `No API key ${id}`);
    return k;
  };
  const Id = t.Object({ id: t.String({ minLength: 1, maxLength: 100 }) });
  const tags = ["api-keys"];
  return new Elysia({ name: "routes:api-keys" })
    .use(requestInfo)
    .get("/api/api-keys", async () => Promise.all((await listApiKeys(db)).map(view)), {
      detail: { tags, summary: "List API keys with their current usage per limit" },
      response: { 200: t.Array(ApiKeyView) },
    })
    .post(
      "/api/api-keys",
      async ({ body, set, info }) => {
        const input = { ...body, name: checkName(body.name)!, limits: checkLimits(body.limits) };
        // The audit row is written in the same transaction as the change.
        const { record, key } = await audited(
          db,
          (trx) => createApiKey(trx, input, deps.clock()),
          ({ record }) => ({
            action: "api_key.created",
            ...auditContext(info),
            details: { id: record.id, name: record.name, keyPrefix: record.keyPrefix },
          }),
        );
        // Any edit may change what a key may do: cached limit states go.
        deps.access.keyStates.invalidate();
        set.status = 201;
        return { ...(await view(record)), key };
      },
      {
        body: CreateBody,
        detail: { tags, summary: "Create an API key (the key is shown once, in this answer)" },
        response: { 201: ApiKeyWithSecret, 400: AdminError },
      },
    )
    .get("/api/api-keys/:id", async ({ params }) => view(await mustGet(params.id)), {
      params: Id,
      detail: { tags, summary: "One API key" },
      response: { 200: ApiKeyView, 404: AdminError },
    })
    .patch(
      "/api/api-keys/:id",
      async ({ params, body, info }) => {
        const input = { ...body, name: checkName(body.name), limits: checkLimits(body.limits) };
        const record = await audited(
          db,
          (trx) => updateApiKey(trx, params.id, input, deps.clock()),
          (r) =>
            r && {
              action: "api_key.updated",
              ...auditContext(info),
              details: { id: r.id, fields: Object.keys(body) },
            },
        );
        if (!record) throw new GatewayError("not_found", `No API key ${params.id}`);
        // Any edit may change what a key may do: cached limit states go.
        deps.access.keyStates.invalidate();
        return view(record);
      },
      {
        params: Id,
        body: UpdateBody,
        detail: { tags, summary: "Change name, active flag, expiry, allowed models or limits" },
        response: { 200: ApiKeyView, 400: AdminError, 404: AdminError },
      },
    )
    .delete(
      "/api/api-keys/:id",
      async ({ params, info }) => {
        const deleted = await audited(
          db,
          (trx) => deleteApiKey(trx, params.id),
          (found) =>
            found ? { action: "api_key.deleted", ...auditContext(info), details: { id: params.id } } : null,
        );
        if (!deleted) throw new GatewayError("not_found", `No API key ${params.id}`);
        // Any edit may change what a key may do: cached limit states go.
        deps.access.keyStates.invalidate();
        return { status: "deleted" as const };
      },
      {
        params: Id,
        detail: { tags, summary: "Delete an API key (it stops working at once)" },
        response: { 200: t.Object({ status: t.Literal("deleted") }), 404: AdminError },
      },
    )
    .post(
      "/api/api-keys/:id/regenerate",
      async ({ params, info }) => {
        const out = await audited(
          db,
          (trx) => regenerateApiKey(trx, params.id, deps.clock()),
          (r) =>
            r && {
              action: "api_key.regenerated",
              ...auditContext(info),
              details: { id: params.id, keyPrefix: r.record.keyPrefix },
            },
        );
        if (!out) throw new GatewayError("not_found", `No API key ${params.id}`);
        // Any edit may change what a key may do: cached limit states go.
        deps.access.keyStates.invalidate();
        return { ...(await view(out.record)), key: out.key };
      },
      {
        params: Id,
        detail: { tags, summary: "Replace the key's secret (the old key stops working at once)" },
        response: { 200: ApiKeyWithSecret, 404: AdminError },
      },
    );
}
