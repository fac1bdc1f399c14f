/**
 * Account snapshots for tests of pure decisions (hooks, selection, classification): one factory
 * with sensible defaults (an active plus account, nothing known about usage).
 *
 * @module
 */
import type { AccountSnapshot } from "../../src/core/types.ts";

export function account(id: string, over: Partial<AccountSnapshot> = {}): AccountSnapshot {
  return {
    id,
    email: `${id}@example.test`,
    chatgptAccountId: `chatgpt-${id}`,
    planType: "plus",
    status: "active",
    statusReason: null,
    resetAt: null,
    cooldownUntil: null,
    failureStreak: 0,
    routingPolicy: "normal",
    version: 1,
    primary: null,
    secondary: null,
    ...over,
  };
}
