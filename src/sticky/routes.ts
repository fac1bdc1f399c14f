/**
 * `GET /api/sticky-sessions` (live bindings) and `DELETE /api/sticky-sessions/{key}` (forget one,
 * so the key's next request is balanced afresh).
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { Page, pageQuery } from "../core/paging.ts";
import { requestInfo } from "../core/request-info.ts";
import { ErrorBody as AdminError } from "../core/schemas.ts";
import { auditContext } from "../store/audit.ts";
import { type StickyKind, stickyKinds } from "./store.ts";

const Kind = t.Union(
  [
    t.Literal(stickyKinds[0]),
    t.Literal(stickyKinds[1]),
    t.Literal(stickyKinds[2]),
    t.Literal(stickyKinds[3]),
  ],
  { description: "Where the key came from: turn_state, session, thread or prompt_cache" },
);

const Binding = t.Object({
  key: t.String(),
  kind: Kind,
  accountId: t.String(),
  createdAt: t.Integer({ description: "epoch milliseconds" }),
  updatedAt: t.Integer({ description: "epoch milliseconds of the last use" }),
  expiresAt: t.Integer({ description: "epoch milliseconds; refreshed on use" }),
});

export function stickyRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:sticky-sessions" })
    .use(requestInfo)
    .get(
      "/api/sticky-sessions",
      async ({ query }) => {
        const now = deps.clock();
        const filter = { accountId: query.accountId, kind: query.kind as StickyKind | undefined };
        const limit = query.limit ?? 1000;
        const offset = query.offset ?? 0;
        const [items, total] = await Promise.all([
          deps.sticky.list(now, { ...filter, limit, offset }),
          deps.sticky.count(now, filter),
        ]);
        return { items, total, limit, offset };
      },
      {
        query: t.Object({
          accountId: t.Optional(t.String({ minLength: 1 })),
          // A plain pattern: an optional enum in a query gets its first value as a default in Elysia.
          kind: t.Optional(
            t.String({ pattern: `^(${stickyKinds.join("|")})$`, description: "Only bindings of this kind" }),
          ),
          ...pageQuery(1000, 10000),
        }),
        detail: { tags: ["sticky-sessions"], summary: "Live sticky session bindings, last used first" },
        response: { 200: Page(Binding) },
      },
    )
    .delete(
      "/api/sticky-sessions/:key",
      async ({ params, info }) => {
        // The audit row is written in the same transaction as the change.
        const deleted = await deps.sticky.delete(params.key, {
          action: "sticky_session.delete",
          ...auditContext(info),
          details: { key: params.key },
        });
        if (!deleted) {
          throw new GatewayError("not_found", `No sticky session with key ${JSON.stringify(params.key)}`);
        }
        return { deleted: true as const, key: params.key };
      },
      {
        params: t.Object({ key: t.String({ minLength: 1 }) }),
        detail: { tags: ["sticky-sessions"], summary: "Forget one binding; the key is balanced afresh" },
        response: { 200: t.Object({ deleted: t.Literal(true), key: t.String() }), 404: AdminError },
      },
    );
}
