/**
 * A fake `GET /wham/usage` (under `/backend-api` too): per access token (or for everyone) a
 * scripted answer; by default a healthy reading. Tests read which tokens asked.
 *
 * @module
 */
import type { FakeRoutes } from "./server.ts";

/** One window of a scripted reading. */
export interface UsageWindowSpec {
  readonly usedPercent: number;
  readonly windowSeconds?: number;
  /** Epoch seconds. */
  readonly resetAt?: number;
}

/** What the fake answers and what it saw. */
export interface FakeUsageState {
  /** Default windows when no script matches. */
  primary: UsageWindowSpec;
  secondary: UsageWindowSpec;
  credits: { has_credits: boolean; unlimited: boolean; balance: string } | null;
  /** Scripted answer, checked first; return undefined for the default reading. */
  respond: ((accessToken: string, accountId: string | null) => Response | undefined) | null;
  /** Bearer tokens seen, in order, with the time (the clock given to `fakeUsage`, else the wall clock). */
  readonly seen: { accessToken: string; accountId: string | null; at: number }[];
}

const windowJson = (w: UsageWindowSpec, defaultSeconds: number, now: number) => ({
  used_percent: w.usedPercent,
  limit_window_seconds: w.windowSeconds ?? defaultSeconds,
  reset_at: w.resetAt ?? Math.floor(now / 1000) + (w.windowSeconds ?? defaultSeconds),
  reset_after_seconds: w.windowSeconds ?? defaultSeconds,
});

/** A fake `/wham/usage`: its routes (compose with `startFakeServer`) and its scriptable state. */
export function fakeUsage(opts: { now?: () => number } = {}): { routes: FakeRoutes; state: FakeUsageState } {
  const clock = opts.now ?? (() => Date.now());
  const state: FakeUsageState = {
    primary: { usedPercent: 12.5 },
    secondary: { usedPercent: 3 },
    credits: { has_credits: false, unlimited: false, balance: "0" },
    respond: null,
    seen: [],
  };
  const handler = (request: Request) => {
    const accessToken = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const accountId = request.headers.get("chatgpt-account-id");
    const now = clock();
    state.seen.push({ accessToken, accountId, at: now });
    const scripted = state.respond?.(accessToken, accountId);
    if (scripted) return scripted;
    return Response.json({
      plan_type: "plus",
      rate_limit: {
        allowed: true,
        primary_window: windowJson(state.primary, 18_000, now),
        secondary_window: windowJson(state.secondary, 604_800, now),
      },
      credits: state.credits,
    });
  };
  return { routes: { "GET /wham/usage": handler, "GET /backend-api/wham/usage": handler }, state };
}
