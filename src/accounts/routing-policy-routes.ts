/**
 * `PATCH /api/accounts/{id}` with `{routingPolicy}`: how the balancer treats one account
 * (`normal`, `burn_first` = spend it before the others, `preserve` = only when nothing else is
 * usable). Applied as the `account.routing_policy` action, like every account change: it bumps the
 * account's `version` (decisions made on the old snapshot become stale) and is recorded in
 * `account_events`.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { requestInfo } from "../core/request-info.ts";
import { ErrorBody as AdminError } from "../core/schemas.ts";
import { routingPolicies } from "../core/types.ts";
import { auditContext } from "../store/audit.ts";

// Literal unions, not t.UnionEnum: Elysia fills an optional UnionEnum with its first value.
const Policy = t.Union(
  [t.Literal(routingPolicies[0]), t.Literal(routingPolicies[1]), t.Literal(routingPolicies[2])],
  { description: "normal, burn_first (spend first) or preserve (use last)" },
);

export function balancingAdminRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:routing-policy" }).use(requestInfo).patch(
    "/api/accounts/:id",
    async ({ params, body, info }) => {
      const [result] = await deps.services.apply(
        [{ type: "account.routing_policy", accountId: params.id, routingPolicy: body.routingPolicy }],
        {
          source: "admin",
          requestId: info.requestId,
          // Written in the same transaction as the change.
          audit: {
            action: "account.routing_policy",
            ...auditContext(info),
            details: { accountId: params.id, routingPolicy: body.routingPolicy },
          },
        },
      );
      if (!result || result.status === "missing" || result.status === "invalid") {
        throw new GatewayError("not_found", `No account with id ${JSON.stringify(params.id)}`);
      }
      if (result.status !== "applied" && result.status !== "noop") {
        throw new GatewayError("conflict", `The account changed meanwhile (${result.status}); try again`);
      }
      return { id: params.id, routingPolicy: body.routingPolicy };
    },
    {
      params: t.Object({ id: t.String({ minLength: 1, maxLength: 200 }) }),
      body: t.Object({ routingPolicy: Policy }, { additionalProperties: false }),
      detail: { tags: ["accounts"], summary: "Change an account's routing policy" },
      response: {
        200: t.Object({ id: t.String(), routingPolicy: Policy }),
        404: AdminError,
        409: AdminError,
      },
    },
  );
}
