import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { hookNames } from "./hooks.ts";

const PluginInfo = t.Object({
  name: t.String(),
  version: t.Union([t.String(), t.Null()]),
  source: t.String({ description: "`builtin` or the path it was loaded from" }),
});

/** `GET /api/plugins`: the loaded plugins and, per hook, the plugins whose handlers run, in order. */
export function pluginRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:plugins" }).get(
    "/api/plugins",
    () => ({
      plugins: deps.host.plugins.map((p) => ({ name: p.name, version: p.version, source: p.source })),
      hooks: Object.fromEntries(hookNames.map((h) => [h, [...deps.bus.handlersOf(h)]])),
    }),
    {
      detail: { tags: ["plugins"], summary: "Loaded plugins and hook handler order" },
      response: {
        200: t.Object({ plugins: t.Array(PluginInfo), hooks: t.Record(t.String(), t.Array(t.String())) }),
      },
    },
  );
}
