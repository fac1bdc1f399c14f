/**
 * A real gateway with three seeded accounts for the balancer's in-process tests, and a `select`
 * that fires `account.select` through the gateway's dispatcher as the proxy will.
 *
 * @module
 */
import type { AccountSnapshot, Action, GatewayServices } from "../../src/plugin-host/api.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { candidatesOf, DAY, insertAccount, insertUsage, weekly } from "./fixtures.ts";

export const ACCOUNT_IDS = ["acc-a", "acc-b", "acc-c"] as const;

export interface Harness {
  readonly gw: TestGateway;
  readonly services: GatewayServices;
  /** When the usage samples were taken. */
  readonly now0: number;
  select(r?: Req): Promise<{ action: Action | undefined; all: readonly AccountSnapshot[] }>;
  /** The account a request is routed to (throws on a refusal). */
  routed(r?: Req): Promise<string>;
  reactivateAll(): Promise<void>;
}

export interface Req {
  headers?: Record<string, string>;
  previousResponseId?: string;
  promptCacheKey?: string;
  excluded?: string[];
  now?: number;
  random?: () => number;
}

/**
 * Starts a gateway with plus (50 % used), plus (10 %) and pro (80 %) accounts whose weeks all
 * reset in 6.5 days, so only remaining capacity (3780 : 6804 : 10080) decides the split.
 */
export async function startHarness(): Promise<Harness> {
  const now0 = Date.now();
  const gw = await startGateway();
  const services = gw.running.gateway.services;
  const db = gw.running.store.db;
  await insertAccount(db, "acc-a", { plan_type: "plus", created_at: 1 });
  await insertAccount(db, "acc-b", { plan_type: "plus", created_at: 2 });
  await insertAccount(db, "acc-c", { plan_type: "pro", created_at: 3 });
  await insertUsage(db, "acc-a", "secondary", weekly(50, now0, 6.5 * DAY), now0);
  await insertUsage(db, "acc-b", "secondary", weekly(10, now0, 6.5 * DAY), now0);
  await insertUsage(db, "acc-c", "secondary", weekly(80, now0, 6.5 * DAY), now0);
  let seq = 0;
  const select: Harness["select"] = async (r = {}) => {
    const now = r.now ?? Date.now();
    const all = await services.accounts.list();
    const excluded = r.excluded ?? [];
    const outcome = await services.fire("account.select", {
      requestId: `req-${++seq}`,
      model: "gpt-5.4",
      candidates: candidatesOf(all, now, excluded),
      all,
      excluded,
      headers: new Headers(r.headers ?? {}),
      body: { promptCacheKey: r.promptCacheKey ?? null, previousResponseId: r.previousResponseId ?? null },
      now,
      random: r.random ?? Math.random,
    });
    return {
      action: outcome.actions.find((a) => a.type === "route.account" || a.type === "request.reject"),
      all,
    };
  };
  return {
    gw,
    services,
    now0,
    select,
    routed: async (r) => {
      const { action } = await select(r);
      if (action?.type !== "route.account")
        throw new Error(`expected a route, got ${JSON.stringify(action)}`);
      return action.accountId;
    },
    reactivateAll: async () => {
      for (const id of ACCOUNT_IDS) {
        await services.apply([{ type: "account.reactivate", accountId: id }], { source: "test" });
      }
    },
  };
}
