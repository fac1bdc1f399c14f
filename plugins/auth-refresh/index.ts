/**
 * Auth refresh: keeps every account's OAuth tokens fresh, provides the proxy's credentials
 * (`ctx.provide("credentials")`), polls `/wham/usage`, and classifies failures through hooks:
 * `refresh.failed` and `usage.failed` → `account.deactivate` / `account.cooldown`,
 * `usage.fetched` → `account.rate_limit` / `account.quota_exceeded` / `account.reactivate`.
 * It never writes the store: tokens and snapshots go through core services, statuses through actions.
 *
 * @module
 */
import { definePlugin } from "../../src/plugin-api.ts";
import { backgroundRefreshPass } from "./background.ts";
import { classifyRefreshFailure, classifyUsageFailure, decideFromUsage } from "./classify.ts";
import { type Loop, startLoop } from "./loop.ts";
import { Refresher } from "./refresher.ts";
import { UsagePoller } from "./usage-poller.ts";

export default definePlugin({
  name: "codex-lb.auth-refresh",
  version: "0.2.0",
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
            await backgroundRefreshPass(services, refresher, passMs);
            return passMs;
          },
          log,
          services.timers,
        ),
        startLoop("usage", Math.min(poller.intervalMs, 1_000), () => poller.tick(), log, services.timers),
      );
    });
    ctx.onStop(async () => {
      await Promise.all(loops.splice(0).map((l) => l.stop()));
    });
  },
});
