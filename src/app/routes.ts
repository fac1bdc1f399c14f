/**
 * Every feature's routes, in mount order. A feature lives in its own folder and exports a function
 * `(deps) => Elysia`; add it here and nowhere else.
 *
 * @module
 */
import { pluginRoutes } from "../admin/plugins-routes.ts";
import { healthRoutes } from "../health/routes.ts";
import { proxyRoutes } from "../proxy/routes.ts";
import { requestLogRoutes } from "../request-logs/routes.ts";
import type { AppDeps } from "./deps.ts";

export const routeModules: readonly ((deps: AppDeps) => import("elysia").AnyElysia)[] = [
  healthRoutes,
  pluginRoutes,
  proxyRoutes,
  requestLogRoutes,
];
