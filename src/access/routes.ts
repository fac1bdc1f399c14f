/**
 * `/api/audit-logs`: read the trail. (`/api/settings/access`, the `apiKeyAuthEnabled` switch, is
 * `PUT /api/settings` narrowed to that field: `src/runtime-settings/routes.ts`.)
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { Page, pageQuery } from "../core/paging.ts";

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
      const limit = query.limit ?? 100;
      const offset = query.offset ?? 0;
      const [rows, count] = await Promise.all([
        db.selectFrom("audit_logs").selectAll().orderBy("id", "desc").limit(limit).offset(offset).execute(),
        db
          .selectFrom("audit_logs")
          .select((e) => e.fn.countAll<number>().as("n"))
          .executeTakeFirst(),
      ]);
      return {
        items: rows.map((r) => ({
          id: Number(r.id),
          at: Number(r.at),
          action: r.action,
          actorIp: r.actor_ip,
          requestId: r.request_id,
          details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
        })),
        total: Number(count?.n ?? 0),
        limit,
        offset,
      };
    },
    {
      query: t.Object(pageQuery(100, 1000)),
      detail: { tags: ["audit"], summary: "The audit trail, newest first" },
      response: { 200: Page(AuditRow) },
    },
  );
}
