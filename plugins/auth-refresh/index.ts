/**
 * Auth refresh: keeps every account's OAuth tokens fresh, provides the proxy's credentials
 * (`ctx.provide("credentials")`), polls `/wham/usage`, and classifies failures through hooks:
 * `refresh.failed` and `usage.failed` → `account.deactivate` / `account.cooldown`,
 * `usage.fetched` → `account.rate_limit` / `account.quota_exceeded` / `account.reactivate`.
 * It never writes the store: tokens and snapshots go through core services, statuses through actions.
 * With several replicas on one database, the background passes run on the leader only, and every
 * refresh is claimed across replicas first (see refresher.ts).
 *
 * @module
 */
import { definePlugin } from "../../src/plugin-api.ts";
import { backgroundRefreshPass } from "./background.ts";
import { classifyRefreshFailure, classifyUsageFailure, decideFromUsage } from "./classify.ts";
import { type Loop, startLoop } from "./loop.ts";
import { Refresher } from "./refresher.ts";
import { UsagePoller } from "./usage-poller.ts";

const FOLLOWER_CHECK_MS = 1_000;

export default definePlugin({
  name: "codex-lb.auth-refresh",
  version: "0.2.0",
  provides: ["credentials"],
  setup(ctx) {
    const { services, settings, log } = ctx;
    const refresher = new Refresher(services, settings, log);
    const poller = new UsagePoller(services, settings, refresher, log);
    ctx.provide("credentials", { get: (accountId, options) => refresher.get(accountId, options ?? {}) });
    ctx.on("refresh.failed", classifyRefreshFailure);
    ctx.on("usage.failed", classifyUsageFailure);
    ctx.on("usage.fetched", decideFromUsage);

    const loops: Loop[] = [];
    ctx.onStart(() => {
      const passMs = settings.refreshCheckIntervalSeconds * 1000;
      loops.push(
        startLoop(
          "refresh",
          Math.min(passMs, 5_000),
          async () => {
            // Once-only work: only the leader among replicas sharing the database runs it; the
            // others look again every second, so a new leader takes over at once.
            if (!services.cluster.isLeader()) return FOLLOWER_CHECK_MS;
            await backgroundRefreshPass(services, refresher, passMs);
            return passMs;
          },
          log,
          services.timers,
        ),
        startLoop(
          "usage",
          Math.min(poller.intervalMs, 1_000),
          async () => (services.cluster.isLeader() ? poller.tick() : FOLLOWER_CHECK_MS),
          log,
          services.timers,
        ),
      );
    });
    ctx.onStop(async () => {
      refresher.stop();
      await Promise.all(loops.splice(0).map((l) => l.stop()));
    });
  },
});
