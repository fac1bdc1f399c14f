/**
 * The routing strategies: a pure choice among usable accounts, from their states, `now`, this
 * process's selection history and a random source. No I/O; seeded in tests.
 *
 * Order of preference, before the strategy itself:
 * 1. accounts with a free stream slot (all when none has one: the lease queue then decides);
 * 2. accounts whose stored usage does not say "exhausted" (all when every one does: stored usage
 *    ranks, the upstream alone refuses);
 * 3. the best routing-policy pool present: `burn_first`, then `normal`, then `preserve`.
 *
 * @module
 */
import type { AccountSnapshot, EpochMs, routingStrategies } from "../../src/plugin-api.ts";
import { type AccountWindows, windowsOf } from "./capacity.ts";
import { isUsable } from "./health.ts";

export type RoutingStrategy = (typeof routingStrategies)[number];

/** A 5-hour window used at least this much is avoided by `capacity_weighted` while others have room. */
export const SHORT_WINDOW_AVOID_AT = 0.9;
/** Largest weight multiplier for an account whose weekly credits would otherwise expire unused. */
export const MAX_PACE_BOOST = 10;

const policyRank = { burn_first: 0, normal: 1, preserve: 2 } as const;

export interface SelectionContext {
  readonly strategy: RoutingStrategy;
  readonly now: EpochMs;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  /** When this process last chose each account (round robin, tie-breaks). */
  readonly lastSelected: ReadonlyMap<string, EpochMs>;
  /** Streams in flight per account; with `maxStreams`, full accounts come last. */
  readonly inFlight?: (accountId: string) => number;
  readonly maxStreams?: number;
}

export interface Choice {
  readonly accountId: string;
  /** Short explanation for logs (`capacity_weighted weight 0.42`, `fill_first`, ...). */
  readonly reason: string;
}

interface Item {
  readonly a: AccountSnapshot;
  readonly w: AccountWindows;
}

const byId = (x: Item, y: Item) => (x.a.id < y.a.id ? -1 : x.a.id > y.a.id ? 1 : 0);

/** Keeps the items that pass `test`, or all of them when none does. */
function prefer(items: readonly Item[], test: (i: Item) => boolean): readonly Item[] {
  const kept = items.filter(test);
  return kept.length > 0 ? kept : items;
}

/** Stored usage says the account cannot serve: a window at 100 % that has not reset yet. */
export function storedExhausted(w: AccountWindows): boolean {
  return w.long.used >= 1 || (w.short !== null && w.short.used >= 1);
}

/**
 * How much more urgent than plain capacity an account's long window is: remaining fraction over
 * the fraction of the window left. Above 1 the account cannot be spent down by its reset even at
 * its full 5-hour pace (the weekly size is exactly the 5-hour size run all week), so the rest
 * would be wasted; such accounts get proportionally more traffic, up to {@link MAX_PACE_BOOST}.
 */
export function paceBoost(w: AccountWindows, now: EpochMs): number {
  const { long } = w;
  if (long.resetAt === null) return 1;
  const windowMs = long.windowMinutes * 60_000;
  const left = Math.min(1, Math.max(0, (long.resetAt - now) / windowMs));
  if (left <= 0) return 1;
  return Math.min(MAX_PACE_BOOST, Math.max(1, (1 - long.used) / left));
}

/** The `capacity_weighted` weight: remaining long-window credits × pace boost. */
export function capacityWeight(a: AccountSnapshot, now: EpochMs): number {
  const w = windowsOf(a, now);
  return w.long.capacity * (1 - w.long.used) * paceBoost(w, now);
}

function lastOf(ctx: SelectionContext, id: string): number {
  return ctx.lastSelected.get(id) ?? Number.NEGATIVE_INFINITY;
}

/** Least used first: weekly used, then 5-hour used, then streams in flight, then least recently chosen. */
function leastUsed(items: readonly Item[], ctx: SelectionContext): Item {
  const key = (i: Item) => [
    i.w.long.used,
    i.w.short?.used ?? 0,
    ctx.inFlight?.(i.a.id) ?? 0,
    lastOf(ctx, i.a.id),
  ];
  return [...items].sort((x, y) => {
    const kx = key(x);
    const ky = key(y);
    for (let k = 0; k < kx.length; k++) if (kx[k]! !== ky[k]!) return kx[k]! < ky[k]! ? -1 : 1;
    return byId(x, y);
  })[0]!;
}

function capacityWeighted(items: readonly Item[], ctx: SelectionContext): Choice {
  const pool = [...prefer(items, (i) => i.w.short === null || i.w.short.used < SHORT_WINDOW_AVOID_AT)].sort(
    byId,
  );
  const weights = pool.map((i) => i.w.long.capacity * (1 - i.w.long.used) * paceBoost(i.w, ctx.now));
  const total = weights.reduce((s, x) => s + x, 0);
  if (!(total > 0)) {
    return {
      accountId: leastUsed(pool, ctx).a.id,
      reason: "capacity_weighted: no known capacity, least used",
    };
  }
  let r = ctx.random() * total;
  for (let k = 0; k < pool.length; k++) {
    r -= weights[k]!;
    if (r < 0 && weights[k]! > 0) {
      return {
        accountId: pool[k]!.a.id,
        reason: `capacity_weighted share ${(weights[k]! / total).toFixed(3)}`,
      };
    }
  }
  // Floating-point leftovers: the last account with weight.
  const k = weights.findLastIndex((x) => x > 0);
  return { accountId: pool[k]!.a.id, reason: `capacity_weighted share ${(weights[k]! / total).toFixed(3)}` };
}

/**
 * Chooses one of `candidates`, or null when none is usable at `ctx.now`.
 */
export function chooseAccount(candidates: readonly AccountSnapshot[], ctx: SelectionContext): Choice | null {
  let items: readonly Item[] = candidates
    .filter((a) => isUsable(a, ctx.now))
    .map((a) => ({ a, w: windowsOf(a, ctx.now) }));
  if (items.length === 0) return null;
  const { inFlight, maxStreams } = ctx;
  if (inFlight && maxStreams !== undefined) items = prefer(items, (i) => inFlight(i.a.id) < maxStreams);
  items = prefer(items, (i) => !storedExhausted(i.w));
  const best = Math.min(...items.map((i) => policyRank[i.a.routingPolicy] ?? policyRank.normal));
  items = items.filter((i) => (policyRank[i.a.routingPolicy] ?? policyRank.normal) === best);

  switch (ctx.strategy) {
    case "usage_weighted":
      return { accountId: leastUsed(items, ctx).a.id, reason: "usage_weighted: least used" };
    case "round_robin": {
      const next = [...items].sort((x, y) => lastOf(ctx, x.a.id) - lastOf(ctx, y.a.id) || byId(x, y))[0]!;
      return { accountId: next.a.id, reason: "round_robin: least recently selected" };
    }
    case "fill_first":
      return { accountId: [...items].sort(byId)[0]!.a.id, reason: "fill_first: first in stable order" };
    default:
      return capacityWeighted(items, ctx);
  }
}
