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

/** A usable account with what the strategies read from it, fixed while its routing state holds. */
interface Item {
  readonly a: AccountSnapshot;
  readonly w: AccountWindows;
  readonly rank: number;
  /** {@link storedExhausted}. */
  readonly exhausted: boolean;
  /** `capacity_weighted` keeps it while others also have room in their 5-hour window. */
  readonly shortOk: boolean;
  /**
   * The `capacity_weighted` weight when its pace boost is 1 for the state's whole validity (then
   * it does not follow the clock); null when it must be computed at the request's `now`.
   */
  readonly fixedWeight: number | null;
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

/**
 * The last millisecond before the pace boost can rise above 1: from then on the window's time left
 * is below its unused share (null: no known reset, the boost stays 1).
 */
function paceBoostOnset(w: AccountWindows): number | null {
  const { long } = w;
  if (long.resetAt === null) return null;
  return Math.floor(long.resetAt - (1 - long.used) * long.windowMinutes * 60_000) - 1;
}

/** Remaining long-window credits: the `capacity_weighted` weight before its pace boost. */
function remainingCredits(w: AccountWindows): number {
  return w.long.capacity * (1 - w.long.used);
}

/** The `capacity_weighted` weight: remaining long-window credits × pace boost. */
export function capacityWeight(a: AccountSnapshot, now: EpochMs): number {
  const w = windowsOf(a, now);
  return remainingCredits(w) * paceBoost(w, now);
}

function weightOf(i: Item, now: EpochMs): number {
  return i.fixedWeight ?? remainingCredits(i.w) * paceBoost(i.w, now);
}

function lastOf(ctx: SelectionContext, id: string): number {
  return ctx.lastSelected.get(id) ?? Number.NEGATIVE_INFINITY;
}

/**
 * Least used first: weekly used, then 5-hour used, then streams in flight, then least recently
 * chosen, then id. A total order, so one pass finds its first item (what sorting would put first).
 */
function leastUsed(items: readonly Item[], ctx: SelectionContext): Item {
  let best = items[0]!;
  let bestKey = [
    best.w.long.used,
    best.w.short?.used ?? 0,
    ctx.inFlight?.(best.a.id) ?? 0,
    lastOf(ctx, best.a.id),
  ];
  for (let n = 1; n < items.length; n++) {
    const i = items[n]!;
    const key = [i.w.long.used, i.w.short?.used ?? 0, ctx.inFlight?.(i.a.id) ?? 0, lastOf(ctx, i.a.id)];
    let cmp = 0;
    for (let k = 0; k < key.length && cmp === 0; k++)
      if (key[k]! !== bestKey[k]!) cmp = key[k]! < bestKey[k]! ? -1 : 1;
    if (cmp < 0 || (cmp === 0 && byId(i, best) < 0)) {
      best = i;
      bestKey = key;
    }
  }
  return best;
}

/** Least recently selected by this process, then id. */
function leastRecent(items: readonly Item[], ctx: SelectionContext): Item {
  let best = items[0]!;
  let bestLast = lastOf(ctx, best.a.id);
  for (let n = 1; n < items.length; n++) {
    const i = items[n]!;
    const last = lastOf(ctx, i.a.id);
    if (last < bestLast || (last === bestLast && byId(i, best) < 0)) {
      best = i;
      bestLast = last;
    }
  }
  return best;
}

/** The weighted draw over `pool` (sorted by id) with its weights and their total. */
function draw(
  pool: readonly Item[],
  weights: ArrayLike<number>,
  total: number,
  ctx: SelectionContext,
): Choice {
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
  let k = pool.length - 1;
  while (k > 0 && !(weights[k]! > 0)) k--;
  return { accountId: pool[k]!.a.id, reason: `capacity_weighted share ${(weights[k]! / total).toFixed(3)}` };
}

/** `pool` (sorted by id) without the accounts whose 5-hour window is nearly used, unless all are. */
function weightedPool(items: readonly Item[]): readonly Item[] {
  return prefer(items, (i) => i.shortOk);
}

function capacityWeighted(items: readonly Item[], ctx: SelectionContext): Choice {
  const pool = weightedPool(items);
  const weights = pool.map((i) => weightOf(i, ctx.now));
  const total = weights.reduce((s, x) => s + x, 0);
  return draw(pool, weights, total, ctx);
}

function itemOf(a: AccountSnapshot, now: EpochMs, fixedUntil?: number): Item {
  const w = windowsOf(a, now);
  const boostFixed =
    w.long.resetAt === null ||
    (fixedUntil !== undefined && paceBoost(w, now) === 1 && paceBoost(w, fixedUntil) === 1);
  return {
    a,
    w,
    rank: policyRank[a.routingPolicy] ?? policyRank.normal,
    exhausted: storedExhausted(w),
    shortOk: w.short === null || w.short.used < SHORT_WINDOW_AVOID_AT,
    fixedWeight: boostFixed ? remainingCredits(w) : null,
  };
}

/** The preferences every strategy applies, then the strategy, over usable `items` sorted by id. */
function chooseFromItems(items: readonly Item[], ctx: SelectionContext): Choice | null {
  if (items.length === 0) return null;
  const { inFlight, maxStreams } = ctx;
  if (inFlight && maxStreams !== undefined) items = prefer(items, (i) => inFlight(i.a.id) < maxStreams);
  items = preferUnexhaustedBestPolicy(items);
  return byStrategy(items, ctx);
}

function preferUnexhaustedBestPolicy(items: readonly Item[]): readonly Item[] {
  items = prefer(items, (i) => !i.exhausted);
  let best = Number.POSITIVE_INFINITY;
  for (const i of items) if (i.rank < best) best = i.rank;
  return items.filter((i) => i.rank === best);
}

function byStrategy(items: readonly Item[], ctx: SelectionContext): Choice {
  switch (ctx.strategy) {
    case "usage_weighted":
      return { accountId: leastUsed(items, ctx).a.id, reason: "usage_weighted: least used" };
    case "round_robin":
      return { accountId: leastRecent(items, ctx).a.id, reason: "round_robin: least recently selected" };
    case "fill_first":
      return { accountId: items[0]!.a.id, reason: "fill_first: first in stable order" };
    default:
      return capacityWeighted(items, ctx);
  }
}

/**
 * The routing state of one account list, computed once and kept while nothing it depends on
 * changes: which accounts are usable, their windows, policy ranks and (when the clock does not
 * move them) their `capacity_weighted` weights and running totals. The account list is replaced
 * (a new array from the snapshot cache) whenever an account changes — status, cooldown, usage,
 * a new or removed account — so a state belongs to one list; it also ends at the next instant the
 * clock changes one of its answers (a cooldown or reset ends, a window refills, a pace boost
 * starts). Choosing from it costs O(1) for `capacity_weighted` with fixed weights (a binary search
 * over the running totals) and one pass without allocation otherwise, instead of rebuilding every
 * account's state per request; the choices are the same.
 */
export class RoutingState {
  /** The usable accounts at build time, in the list's order. */
  readonly usable: readonly AccountSnapshot[];
  /** The usable accounts as items, sorted by id. */
  readonly items: readonly Item[];
  readonly #byId: ReadonlyMap<string, Item>;
  readonly builtAt: EpochMs;
  /** First instant (exclusive bound) at which some answer of this state may differ. */
  readonly validUntil: EpochMs;
  /** `items` after the exhausted / policy preferences (what every strategy sees when none is full). */
  readonly #base: readonly Item[];
  #weighted:
    | { pool: readonly Item[]; cumulative: Float64Array; weights: Float64Array; total: number }
    | null
    | undefined;

  constructor(all: readonly AccountSnapshot[], now: EpochMs) {
    this.builtAt = now;
    let until = Number.POSITIVE_INFINITY;
    const next = (t: number | null) => {
      if (t !== null && t > now && t < until) until = t;
    };
    for (const a of all) {
      next(a.cooldownUntil);
      next(a.resetAt);
      next(a.primary?.resetAt ?? null);
      next(a.secondary?.resetAt ?? null);
    }
    const usable = all.filter((a) => isUsable(a, now));
    // A pace boost that is 1 now stays 1 until its window's time left drops below the unused share.
    const items = usable.map((a) => {
      const w = windowsOf(a, now);
      let fixedUntil: number | undefined;
      const onset = paceBoostOnset(w);
      if (onset !== null && onset > now) fixedUntil = Math.min(onset, until - 1);
      const item = itemOf(a, now, fixedUntil);
      // A boost already above 1 follows the clock (computed per request) until the window resets.
      if (item.fixedWeight !== null && fixedUntil !== undefined) until = Math.min(until, fixedUntil + 1);
      return item;
    });
    items.sort(byId);
    this.usable = usable;
    this.items = items;
    this.#byId = new Map(items.map((i) => [i.a.id, i]));
    this.#base = items.length > 0 ? preferUnexhaustedBestPolicy(items) : items;
    this.validUntil = until;
  }

  /** Whether this state answers for `now`. */
  holdsAt(now: EpochMs): boolean {
    return now >= this.builtAt && now < this.validUntil;
  }

  /** The usable account with this id, if any. */
  get(id: string): AccountSnapshot | undefined {
    return this.#byId.get(id)?.a;
  }

  /** Whether `candidates` are exactly this state's usable accounts (same snapshots, same order). */
  isUsableList(candidates: readonly AccountSnapshot[]): boolean {
    if (candidates === this.usable) return true;
    if (candidates.length !== this.usable.length) return false;
    for (let k = 0; k < candidates.length; k++) if (candidates[k] !== this.usable[k]) return false;
    return true;
  }

  /** {@link chooseAccount} over some of the list's accounts, reusing their prepared items. */
  chooseAmong(candidates: readonly AccountSnapshot[], ctx: SelectionContext): Choice | null {
    const items = candidates
      .filter((a) => isUsable(a, ctx.now))
      .map((a) => {
        const i = this.#byId.get(a.id);
        return i && i.a === a ? i : itemOf(a, ctx.now);
      });
    return chooseFromItems(items.sort(byId), ctx);
  }

  /**
   * Chooses among all usable accounts (as {@link chooseAccount} would with `usable` as
   * candidates). `full` lists the accounts at their stream cap (any order; others ignored).
   */
  choose(ctx: SelectionContext, full: readonly string[] = []): Choice | null {
    if (this.items.length === 0) return null;
    if (full.some((id) => this.#byId.has(id))) return chooseFromItems(this.items, ctx);
    const base = this.#base;
    if (ctx.strategy === "usage_weighted" || ctx.strategy === "round_robin" || ctx.strategy === "fill_first")
      return byStrategy(base, ctx);
    if (this.#weighted === undefined) this.#weighted = this.#prepareWeighted();
    const prepared = this.#weighted;
    if (prepared === null) return byStrategy(base, ctx);
    const { pool, cumulative, weights, total } = prepared;
    if (!(total > 0)) return draw(pool, weights, total, ctx);
    // The first account whose running total exceeds the draw (what the one-by-one walk finds).
    const r = ctx.random() * total;
    let lo = 0;
    let hi = pool.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    let k = lo;
    if (!(cumulative[k]! > r)) {
      k = pool.length - 1;
      while (k > 0 && !(weights[k]! > 0)) k--;
    }
    return {
      accountId: pool[k]!.a.id,
      reason: `capacity_weighted share ${(weights[k]! / total).toFixed(3)}`,
    };
  }

  /** Running totals of the fixed weights, or null when some weight follows the clock. */
  #prepareWeighted() {
    const pool = weightedPool(this.#base);
    if (pool.some((i) => i.fixedWeight === null)) return null;
    const weights = Float64Array.from(pool, (i) => i.fixedWeight!);
    const cumulative = new Float64Array(pool.length);
    let total = 0;
    for (let k = 0; k < pool.length; k++) {
      total += weights[k]!;
      cumulative[k] = total;
    }
    return { pool, cumulative, weights, total };
  }

  static readonly #cache = new WeakMap<readonly AccountSnapshot[], RoutingState>();

  /** The routing state of `all` at `now`: the cached one while it holds, else a new one. */
  static of(all: readonly AccountSnapshot[], now: EpochMs): RoutingState {
    const cached = RoutingState.#cache.get(all);
    if (cached?.holdsAt(now)) return cached;
    const state = new RoutingState(all, now);
    RoutingState.#cache.set(all, state);
    return state;
  }
}

/**
 * Chooses one of `candidates`, or null when none is usable at `ctx.now`.
 */
export function chooseAccount(candidates: readonly AccountSnapshot[], ctx: SelectionContext): Choice | null {
  const items = candidates.filter((a) => isUsable(a, ctx.now)).map((a) => itemOf(a, ctx.now));
  return chooseFromItems(items.sort(byId), ctx);
}
