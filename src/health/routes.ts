import { Elysia, t } from "elysia";
import type { AppDeps } from "../app/deps.ts";

/** `GET /health` (the process is up) and `GET /health/ready` (the store answers). */
export function healthRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:health" })
    .get("/health", () => ({ status: "ok" as const }), {
      detail: { tags: ["health"], summary: "Liveness: the process answers" },
      response: { 200: t.Object({ status: t.Literal("ok") }) },
    })
    .get(
      "/health/ready",
      async ({ set }) => {
        if (await deps.store.ping()) return { status: "ready" as const };
        set.status = 503;
        return { status: "unavailable" as const };
      },
      {
        detail: { tags: ["health"], summary: "Readiness: the store answers" },
        response: {
          200: t.Object({ status: t.Literal("ready") }),
          503: t.Object({ status: t.Literal("unavailable") }),
        },
      },
    );
}
