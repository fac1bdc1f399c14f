/**
 * `GET /docs/json`: the OpenAPI document of every route, generated on request the way
 * `@elysiajs/swagger`'s `swagger()` plugin generates it (same route walk, with the package's own
 * `registerSchemaPath` and `filterPaths`), then made valid OpenAPI 3.1 by `normalizeOpenApi`
 * (app.ts). The package's mapping code (`@elysiajs/swagger/utils`) is imported on the first
 * request; the plugin module itself is not loaded at all: it pulls in a theme package for another
 * UI (Scalar), and its page is the dashboard's offline Swagger UI (`GET /docs`) here anyway.
 * Loading it at start-up cost 4.4 MB of resident memory in an idle gateway (scripts/bench-idle.ts).
 *
 * @module
 */
import { Elysia } from "elysia";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON.
type Json = any;

/** The methods a document lists (`ALL` routes are listed under each); OPTIONS is left out. */
const ALLOWED_METHODS = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"];
const EXCLUDED_METHODS = ["OPTIONS"];

/** What the route walk reads of the app (Elysia keeps these protected). */
interface RouteTree {
  getGlobalRoutes(): { method: string; path: string; hooks: Json }[];
  getGlobalDefinitions?(): { type: Json };
}

/** The document route; `documentation` is the document's fixed part (its `info`). */
export function openApiDocument(path: string, exclude: string[], documentation: { info: Json }): Elysia {
  const schema: Json = {};
  let totalRoutes = 0;
  const app: Elysia = new Elysia({ name: "openapi-document" });
  const tree = app as unknown as RouteTree;
  return app.get(
    path,
    async function openAPISchema() {
      const { filterPaths, registerSchemaPath } = await import("@elysiajs/swagger/utils");
      const routes = tree.getGlobalRoutes();
      if (routes.length !== totalRoutes) {
        totalRoutes = routes.length;
        const models = tree.getGlobalDefinitions?.().type;
        for (const route of routes) {
          if (route.hooks?.detail?.hide === true) continue;
          if (EXCLUDED_METHODS.includes(route.method)) continue;
          if (!ALLOWED_METHODS.includes(route.method) && route.method !== "ALL") continue;
          const methods = route.method === "ALL" ? ALLOWED_METHODS : [route.method];
          for (const method of methods)
            registerSchemaPath({
              schema,
              hook: route.hooks,
              method,
              path: route.path,
              models,
              contentType: route.hooks.type,
            } as Parameters<typeof registerSchemaPath>[0]);
        }
      }
      return {
        openapi: "3.0.3",
        ...documentation,
        tags: undefined,
        info: {
          title: "Elysia Documentation",
          description: "Development documentation",
          version: "0.0.0",
          ...documentation.info,
        },
        paths: filterPaths(schema, { excludeStaticFile: true, exclude }),
        components: {
          schemas: { ...tree.getGlobalDefinitions?.().type },
        },
      };
    },
    { detail: { hide: true } },
  ) as unknown as Elysia;
}
