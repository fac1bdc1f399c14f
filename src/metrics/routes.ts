/**
 * `GET /metrics`: the Prometheus text exposition. Answered to a scraper presenting
 * `Authorization: Bearer <CODEX_LB_METRICS_TOKEN>` (when that setting is set), or to whoever has
 * admin access (a session, or a local caller while no admin password is set); 401 otherwise.
 * Absent (404) when `CODEX_LB_METRICS_ENABLED=false`.
 *
 * @module
 */
import { Elysia } from "elysia";
import { hasAdminAccess } from "../access/admin-auth/guard.ts";
import { constantTimeEqual } from "../core/crypto.ts";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { requestInfo } from "../core/request-info.ts";
import { ErrorBody } from "../core/schemas.ts";

export function metricsRoutes(deps: AppDeps) {
  const app = new Elysia({ name: "routes:metrics" }).use(requestInfo);
  const metrics = deps.metrics;
  if (!metrics) return app;
  const token = deps.settings.metricsToken;
  return app.get(
    "/metrics",
    async ({ request, info }) => {
      const presented = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
      const byToken = token !== "" && presented !== undefined && constantTimeEqual(presented, token);
      if (
        !byToken &&
        !(await hasAdminAccess(
          deps.access.admin,
          request,
          deps.access.isLocal(request, info.peerIp),
          deps.clock(),
        ))
      ) {
        throw new GatewayError(
          "authentication_required",
          "Metrics need an admin session or the bearer token of CODEX_LB_METRICS_TOKEN",
          {},
          { "www-authenticate": 'Bearer realm="codex-lb metrics"' },
        );
      }
      // A scraper that passed counts as authenticated: its connection may stay open between scrapes.
      info.authenticated = true;
      return new Response(await metrics.registry.render(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" },
      });
    },
    {
      detail: {
        tags: ["metrics"],
        summary: "Prometheus metrics",
        description:
          "Text exposition format 0.0.4. Needs `Authorization: Bearer <CODEX_LB_METRICS_TOKEN>` or admin access. " +
          "Series: requests, durations, time to first token, tokens, cost, account status and quota, streams in " +
          "flight, queue waits, failovers, token refreshes, hook actions, request-log queue. See docs/operations.md.",
        security: [{ metricsToken: [] }, { adminSession: [] }],
        responses: {
          200: {
            description: "The metrics",
            content: {
              "text/plain": { schema: { type: "string" }, example: "codex_lb_requests_total{...} 1\n" },
            },
          },
        },
      },
      response: { 401: ErrorBody },
    },
  );
}
