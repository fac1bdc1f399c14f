/**
 * `PATCH /api/accounts/{id}` with `{routingPolicy}`: how the balancer treats one account
 * (`normal`, `burn_first` = spend it before the others, `preserve` = only when nothing else is
 * usable). The policy is not a status, so it does not go through the status state machine; the
 * change still bumps the account's `version` (decisions made on the old snapshot become stale) and
 * is recorded in `account_events`.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../app/deps.ts";
import { infoOf } from "../app/request-info.ts";
import { GatewayError } from "../core/errors.ts";
import { type RoutingPolicy, routingPolicies } from "../core/types.ts";
import { rejectUnknownFields } from "../runtime-settings/strict-body.ts";

// Literal unions, not t.UnionEnum: Elysia fills an optional UnionEnum with its first value.
const Policy = t.Union(
  [t.Literal(routingPolicies[0]), t.Literal(routingPolicies[1]), t.Literal(routingPolicies[2])],
  { description: "normal, burn_first (spend first) or preserve (use last)" },
);
const AdminError = t.Object({ error: t.Object({ code: t.String(), message: t.String() }) });

/** Sets an account's routing policy; returns null when the account does not exist. */
export async function setRoutingPolicy(
  deps: Pick<AppDeps, "store" | "clock">,
  id: string,
  policy: RoutingPolicy,
  requestId: string | null = null,
): Promise<{ id: string; routingPolicy: RoutingPolicy } | null> {
  const now = deps.clock();
  return deps.store.db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom("accounts")
      .select(["routing_policy", "status", "version"])
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row) return null;
    if (row.routing_policy === policy) return { id, routingPolicy: policy };
    await trx
      .updateTable("accounts")
      .set({ routing_policy: policy, version: row.version + 1, updated_at: now })
      .where("id", "=", id)
      .execute();
    await trx
      .insertInto("account_events")
      .values({
        at: now,
        account_id: id,
        action: "account.routing_policy",
        from_status: row.status,
        to_status: row.status,
        reason: `Routing policy ${row.routing_policy} → ${policy}`,
        source: "admin",
        plugin: null,
        request_id: requestId,
        details: JSON.stringify({ from: row.routing_policy, to: policy }),
      })
      .execute();
    return { id, routingPolicy: policy };
  });
}

export function balancingAdminRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:balancing-admin" }).patch(
    "/api/accounts/:id",
    async ({ params, body, request }) => {
      const out = await setRoutingPolicy(deps, params.id, body.routingPolicy, infoOf(request).requestId);
      if (!out) throw new GatewayError("not_found", `No account with id ${JSON.stringify(params.id)}`);
      return out;
    },
    {
      transform: rejectUnknownFields(["routingPolicy"]),
      params: t.Object({ id: t.String({ minLength: 1 }) }),
      body: t.Object({ routingPolicy: Policy }, { additionalProperties: false }),
      detail: { tags: ["accounts"], summary: "Change an account's routing policy" },
      response: { 200: t.Object({ id: t.String(), routingPolicy: Policy }), 404: AdminError },
    },
  );
}
