/**
 * `/api/audit-logs`: read the trail. (`/api/settings/access`, the `apiKeyAuthEnabled` switch, is
 * `PUT /api/settings` narrowed to that field: `src/runtime-settings/routes.ts`.)
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../app/deps.ts";

const AuditRow = t.Object({
  id: t.Integer(),
  at: t.Integer({ description: "epoch ms" }),
  action: t.String(),
  actorIp: t.Union([t.String(), t.Null()]),
  requestId: t.Union([t.String(), t.Null()]),
  details: t.Union([t.Record(t.String(), t.Unknown()), t.Null()]),
});

export function accessRoutes(deps: AppDeps) {
  const db = deps.store.db;
  return new Elysia({ name: "routes:access" }).get(
    "/api/audit-logs",
    async ({ query }) => {
      let q = db
        .selectFrom("audit_logs")
        .selectAll()
        .orderBy("id", "desc")
        .limit(query.limit ?? 100);
      if (query.before !== undefined) q = q.where("id", "<", query.before);
      const rows = await q.execute();
      return rows.map((r) => ({
        id: r.id,
        at: r.at,
        action: r.action,
        actorIp: r.actor_ip,
        requestId: r.request_id,
        details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
      }));
    },
    {
      query: t.Object({
        limit: t.Optional(t.Numeric({ minimum: 1, maximum: 1000, multipleOf: 1 })),
        before: t.Optional(
          t.Numeric({
            minimum: 1,
            maximum: Number.MAX_SAFE_INTEGER,
            multipleOf: 1,
            description: "Only rows with a smaller id (paging)",
          }),
        ),
      }),
      detail: { tags: ["audit"], summary: "The audit trail, newest first" },
      response: { 200: t.Array(AuditRow) },
    },
  );
}
