/**
 * The background refresh pass: refreshes idle accounts whose tokens will be due before the next
 * pass (expiry within the margin plus one pass interval, or last refresh too old), so a request
 * rarely waits for a refresh and refresh tokens never go stale unused. Accounts backing off
 * (`cooldownUntil`) and dead ones are skipped.
 *
 * @module
 */
import type { GatewayServices } from "../../src/plugin-api.ts";
import type { Refresher } from "./refresher.ts";

const DEAD = new Set(["reauth_required", "deactivated"]);

/** One pass; returns how many accounts it refreshed successfully. */
export async function backgroundRefreshPass(
  services: GatewayServices,
  refresher: Refresher,
  lookaheadMs: number,
): Promise<number> {
  let refreshed = 0;
  for (const a of await services.accounts.list()) {
    const now = services.now();
    if (DEAD.has(a.status) || (a.cooldownUntil !== null && a.cooldownUntil > now)) continue;
    const creds = await services.accounts.credentials(a.id);
    if (!creds || !refresher.isDue(creds, now, lookaheadMs)) continue;
    try {
      await refresher.refresh(a.id, { trigger: "background" });
      refreshed++;
    } catch {
      // Classified through refresh.failed already.
    }
  }
  return refreshed;
}
