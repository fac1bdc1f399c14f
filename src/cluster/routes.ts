/**
 * `GET /api/replicas`: the gateways sharing this database that are alive now (heartbeat within a
 * few seconds), which one leads the once-only background work, and which one answered.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";

const Replica = t.Object({
  id: t.String({ description: "Random id of the process, new at every start" }),
  name: t.String({ description: "host:pid" }),
  version: t.String(),
  startedAt: t.Integer({ description: "epoch milliseconds" }),
  heartbeatAt: t.Integer({ description: "epoch milliseconds of the last heartbeat" }),
  leader: t.Boolean({ description: "Runs the background refresh, usage polling and retention" }),
  self: t.Boolean({ description: "The replica that answered this request" }),
});

export function clusterRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:replicas" }).get(
    "/api/replicas",
    async () => {
      const replicas = await deps.cluster.election.replicas();
      return {
        self: deps.cluster.replicaId,
        leader: replicas.find((r) => r.leader)?.id ?? null,
        database: deps.store.location.kind,
        replicas,
      };
    },
    {
      detail: { tags: ["replicas"], summary: "Gateways alive on this database, and the leader" },
      response: {
        200: t.Object({
          self: t.String(),
          leader: t.Union([t.String(), t.Null()]),
          database: t.Union([t.Literal("sqlite"), t.Literal("postgres")]),
          replicas: t.Array(Replica),
        }),
      },
    },
  );
}
