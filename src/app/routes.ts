/**
 * Every feature's routes, in mount order. A feature lives in its own folder and exports a function
 * `(deps) => Elysia`; add it here and nowhere else.
 *
 * @module
 */

import { adminAuthRoutes } from "../access/admin-auth/routes.ts";
import { adminSessionRoutes } from "../access/admin-auth/sessions-routes.ts";
import { apiKeyRoutes } from "../access/api-keys/routes.ts";
import { usageRoutes } from "../access/api-keys/usage-route.ts";
import { accessRoutes } from "../access/routes.ts";
import { accountRoutes } from "../accounts/routes.ts";
import { balancingAdminRoutes } from "../accounts/routing-policy-routes.ts";
import { clusterRoutes } from "../cluster/routes.ts";
import type { AppDeps } from "../core/deps.ts";
import { dashboardApiRoutes } from "../dashboard/api-routes.ts";
import { dashboardRoutes } from "../dashboard/routes.ts";
import { firewallRoutes } from "../firewall/routes.ts";
import { importPythonRoutes } from "../import-python/routes.ts";
import { healthRoutes } from "../metrics/health-routes.ts";
import { metricsRoutes } from "../metrics/routes.ts";
import { oauthRoutes } from "../oauth/routes.ts";
import { pluginRoutes } from "../plugin-host/routes.ts";
import { proxyRoutes } from "../proxy/routes.ts";
import { requestLogRoutes } from "../request-logs/routes.ts";
import { runtimeSettingsRoutes } from "../runtime-settings/routes.ts";
import { stickyRoutes } from "../sticky/routes.ts";

export const routeModules: readonly ((deps: AppDeps) => import("elysia").AnyElysia)[] = [
  healthRoutes,
  metricsRoutes,
  pluginRoutes,
  runtimeSettingsRoutes,
  stickyRoutes,
  balancingAdminRoutes,
  accountRoutes,
  oauthRoutes,
  proxyRoutes,
  requestLogRoutes,
  adminAuthRoutes,
  apiKeyRoutes,
  usageRoutes,
  accessRoutes,
  firewallRoutes,
  clusterRoutes,
  importPythonRoutes,
  adminSessionRoutes,
  dashboardApiRoutes,
  // Last: it serves GET /docs, the offline Swagger UI (the document is GET /docs/json, app.ts).
  dashboardRoutes,
];
