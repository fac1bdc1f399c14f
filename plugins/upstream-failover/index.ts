/**
 * Upstream failover: classifies a failed upstream call (`upstream.failed`) into account actions —
 * rate limit, quota, permanent deactivation or a short transient cooldown — with the table in
 * `table.ts`. The proxy moves the request to another account whenever an action was returned for
 * the failing account; a client error (no action) is shown to the client as it is.
 *
 * @module
 */
import { definePlugin } from "../../src/plugin-api.ts";
import { actionsFor } from "./table.ts";

export default definePlugin({
  name: "codex-lb.upstream-failover",
  version: "0.1.0",
  setup(ctx) {
    ctx.on("upstream.failed", (e) =>
      actionsFor({
        ...e,
        accountId: e.account.id,
        failureStreak: e.account.failureStreak,
      }),
    );
  },
});
