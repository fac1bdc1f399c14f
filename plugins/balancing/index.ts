/**
 * Balancing: picks an account for each request (`account.select` → `route.account`), keeps
 * conversations on their account (sticky sessions, `previous_response_id` continuity), clears an
 * account's backoff after a success (`request.completed` → `account.healthy`), and provides the
 * per-account stream leases (`leases`). See docs/balancing.md and
 * openspec/specs/account-routing/spec.md.
 *
 * @module
 */
import { type AccountAction, definePlugin, type EpochMs } from "../../src/plugin-api.ts";
import { LeasePool } from "./leases.ts";
import { type SelectDeps, selectAccount } from "./select.ts";

export default definePlugin({
  name: "codex-lb.balancing",
  version: "0.2.0",
  provides: ["leases"],
  setup(ctx) {
    const leases = new LeasePool({
      maxStreams: () => ctx.settings.accountMaxStreams,
      queueWaitMs: () => ctx.settings.accountQueueWaitMs,
      timers: ctx.services.timers,
      now: () => ctx.services.now(),
    });
    ctx.provide("leases", leases);

    // Round-robin memory: per process, lost on restart (a restart only resets the rotation).
    const lastSelected = new Map<string, EpochMs>();
    // Made once, not per request: the getters read the services and settings at each use, as the
    // object built per request did.
    const deps: SelectDeps = {
      get sticky() {
        return ctx.services.sticky;
      },
      get settings() {
        return ctx.services.runtimeSettings;
      },
      inFlight: (id) => leases.inFlight(id),
      atCap: (cap) => leases.atCap(cap),
      maxStreams: () => ctx.settings.accountMaxStreams,
      lastSelected,
      get fallbackStrategy() {
        return ctx.settings.routingStrategy;
      },
      get log() {
        return ctx.log;
      },
    };
    ctx.on("account.select", (e) => selectAccount(e, deps));

    ctx.on("request.completed", (e) => {
      const a = e.account;
      if (!a || !e.ok) return undefined;
      const actions: AccountAction[] = [];
      if (a.failureStreak > 0 || a.cooldownUntil !== null)
        actions.push({ type: "account.healthy", accountId: a.id });
      // A rate limit or quota block whose reset passed ends for good once the account served again.
      if ((a.status === "rate_limited" || a.status === "quota_exceeded") && (a.resetAt ?? 0) <= e.now) {
        actions.push({
          type: "account.reactivate",
          accountId: a.id,
          reason: "Served a request after its reset",
        });
      }
      return actions;
    });
  },
});
