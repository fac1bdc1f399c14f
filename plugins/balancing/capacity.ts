/**
 * THE plan capacity table (credits per quota window) and how an account's stored usage windows
 * map onto it. Nothing else in the code base knows a plan's size.
 *
 * @module
 */
import type { AccountSnapshot, EpochMs } from "../../src/plugin-api.ts";

export interface PlanCapacity {
  /** Credits of the short (about 5 hour) window; 0 when the plan has none. */
  readonly short: number;
  /** Credits of the long window: a week, or a month for `free`. */
  readonly long: number;
  /** Length of the long window in minutes. */
  readonly longWindowMinutes: number;
}

const WEEK = 7 * 24 * 60;
const MONTH = 30 * 24 * 60;

/** Credits per window, by plan. */
export const planCapacities = {
  plus: { short: 225, long: 7560, longWindowMinutes: WEEK },
  team: { short: 225, long: 7560, longWindowMinutes: WEEK },
  business: { short: 225, long: 7560, longWindowMinutes: WEEK },
  edu: { short: 225, long: 7560, longWindowMinutes: WEEK },
  prolite: { short: 1125, long: 37800, longWindowMinutes: WEEK },
  pro: { short: 1500, long: 50400, longWindowMinutes: WEEK },
  enterprise: { short: 1500, long: 50400, longWindowMinutes: WEEK },
  free: { short: 0, long: 1134, longWindowMinutes: MONTH },
} as const satisfies Record<string, PlanCapacity>;

export type KnownPlan = keyof typeof planCapacities;

/** Other names the upstream uses for the same plans. */
const aliases: Readonly<Record<string, KnownPlan>> = {
  education: "edu",
  k12: "edu",
  guest: "free",
  go: "free",
  free_workspace: "free",
  quorum: "free",
};

/**
 * The capacity of a plan type as the upstream spells it. An unknown or missing plan counts as
 * `free`: the smallest known plan, so an account whose plan was never read is not over-used.
 */
export function planCapacity(planType: string | null | undefined): PlanCapacity {
  const p = (planType ?? "").trim().toLowerCase();
  if (Object.hasOwn(planCapacities, p)) return planCapacities[p as KnownPlan];
  return planCapacities[aliases[p] ?? "free"];
}

/** One quota window as the balancer reasons about it. */
export interface WindowState {
  /** Fraction used, 0..1 (0 when the window has already reset). */
  readonly used: number;
  /** When it resets; null when unknown or already passed. */
  readonly resetAt: EpochMs | null;
  readonly capacity: number;
  readonly windowMinutes: number;
}

export interface AccountWindows {
  /** The about-5-hour window; null when the plan has none or nothing is known. */
  readonly short: WindowState | null;
  /** The weekly (or monthly) window; always present, assumed unused when nothing is known. */
  readonly long: WindowState;
}

function state(
  w: { usedPercent: number; resetAt: EpochMs | null; windowMinutes: number | null },
  capacity: number,
  fallbackMinutes: number,
  now: EpochMs,
): WindowState {
  // A window whose reset time passed has refilled, whatever the last stored sample says.
  const expired = w.resetAt !== null && w.resetAt <= now;
  const pct = Number.isFinite(w.usedPercent) ? w.usedPercent : 0;
  return {
    used: expired ? 0 : Math.min(1, Math.max(0, pct / 100)),
    resetAt: expired ? null : w.resetAt,
    capacity,
    windowMinutes: w.windowMinutes ?? fallbackMinutes,
  };
}

/**
 * The short and long windows of an account at `now`. A lone `primary` window of a week or more
 * is the long window (free plans report only a monthly window there).
 */
export function windowsOf(a: AccountSnapshot, now: EpochMs): AccountWindows {
  const cap = planCapacity(a.planType);
  let short = a.primary;
  let long = a.secondary;
  if (!long && short && (short.windowMinutes ?? 0) >= WEEK) {
    long = short;
    short = null;
  }
  return {
    short: short && cap.short > 0 ? state(short, cap.short, 300, now) : null,
    long: long
      ? state(long, cap.long, cap.longWindowMinutes, now)
      : { used: 0, resetAt: null, capacity: cap.long, windowMinutes: cap.longWindowMinutes },
  };
}

/** Credits left in the long window: plan capacity × (1 − used fraction). */
export function remainingCredits(a: AccountSnapshot, now: EpochMs): number {
  const { long } = windowsOf(a, now);
  return long.capacity * (1 - long.used);
}
