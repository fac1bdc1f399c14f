/**
 * Every feature's routes, in mount order. A feature lives in its own folder and exports a function
 * `(deps) => Elysia`; add it here and nowhere else.
 *
 * @module
 */
import { adminAuthRoutes } from "../access/admin-auth/routes.ts";
import { apiKeyRoutes } from "../access/api-keys/routes.ts";
import { usageRoutes } from "../access/api-keys/usage-route.ts";
import { accessRoutes } from "../access/routes.ts";
import { pluginRoutes } from "../admin/plugins-routes.ts";
import { firewallRoutes } from "../firewall/routes.ts";
import { healthRoutes } from "../health/routes.ts";
import type { AppDeps } from "./deps.ts";

export const routeModules: readonly ((deps: AppDeps) => import("elysia").AnyElysia)[] = [
  healthRoutes,
  pluginRoutes,
  adminAuthRoutes,
  apiKeyRoutes,
  usageRoutes,
  accessRoutes,
  firewallRoutes,
];
