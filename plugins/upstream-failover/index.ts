/**
 * Upstream failover: classifies a failed upstream call (`upstream.failed`) into account actions —
 * rate limit, quota, permanent deactivation or a short transient cooldown — with the table in
 * `table.ts`, plus `request.failover` (move the request to another account) for every class but a
 * client error, which is shown to the client as it is.
 *
 * @module
 */
import { type Action, definePlugin } from "../../src/plugin-api.ts";
import { actionsFor } from "./table.ts";

export default definePlugin({
  name: "codex-lb.upstream-failover",
  version: "0.1.0",
  setup(ctx) {
    ctx.on("upstream.failed", (e): Action[] => {
      const actions = actionsFor({ ...e, accountId: e.account.id, failureStreak: e.account.failureStreak });
      // The account's fault (any class but `client`): move the request to another account.
      return actions.length > 0 ? [...actions, { type: "request.failover", reason: actions[0]!.type }] : [];
    });
  },
});
