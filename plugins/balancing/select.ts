/**
 * The `account.select` decision: continuity first (`previous_response_id` must go to the account
 * that produced it), then the sticky key's account while it is usable, else the routing strategy;
 * the chosen account is bound to the key. Pure apart from reads: the binding is returned as an
 * action (`sticky.bind` / `sticky.touch`, with the binding it saw as compare-and-set guard) next to
 * the `route.account`, and the core applies it.
 *
 * @module
 */
import type {
  AccountSelectEvent,
  AccountSnapshot,
  Action,
  EpochMs,
  PluginLogger,
  RuntimeSettingsReader,
  StickyReader,
} from "../../src/plugin-api.ts";
import { type AffinityKey, affinityKeyOf } from "./affinity.ts";
import { isUsable, usableAgainAt } from "./health.ts";
import { type Choice, RoutingState, type RoutingStrategy, type SelectionContext } from "./strategies.ts";

export interface SelectDeps {
  readonly sticky: StickyReader;
  readonly settings: RuntimeSettingsReader;
  /** Streams in flight per account and the cap (from the lease pool). */
  readonly inFlight: (accountId: string) => number;
  readonly maxStreams: () => number;
  /** The accounts with `cap` or more streams in flight (from the lease pool; only those with streams). */
  readonly atCap?: (cap: number) => readonly string[];
  /** When this process last routed to each account (round robin). Updated here. */
  readonly lastSelected: Map<string, EpochMs>;
  /** Used when the runtime settings cannot be read (the store is briefly unavailable). */
  readonly fallbackStrategy: RoutingStrategy;
  readonly log: PluginLogger;
}

function route(deps: SelectDeps, e: AccountSelectEvent, accountId: string, reason: string): Action {
  deps.lastSelected.set(accountId, e.now);
  return { type: "route.account", accountId, reason: reason.slice(0, 500) };
}

/** Store read failures must not fail the request: it is then simply not sticky (or uses the env strategy). */
async function safely<T>(deps: SelectDeps, what: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    deps.log.warn(
      { err: err instanceof Error ? err.message : String(err), what },
      "balancing store read/write failed",
    );
    return fallback;
  }
}

/** The refusal when the account that holds a `previous_response_id` cannot serve now. */
function ownerUnavailable(e: AccountSelectEvent, ownerId: string, responseId: string): Action {
  const owner = e.all.find((a) => a.id === ownerId);
  const why = !owner
    ? "no longer configured"
    : e.excluded.includes(ownerId)
      ? "failed for this request"
      : owner.status === "active"
        ? "cooling down after failures"
        : `${owner.status.replaceAll("_", " ")}`;
  const back = owner ? usableAgainAt(owner, e.now) : null;
  const headers: Record<string, string> = {};
  if (back !== null) headers["retry-after"] = String(Math.max(1, Math.ceil((back - e.now) / 1000)));
  return {
    type: "request.reject",
    code: "account_unavailable",
    message: `previous_response_id ${responseId} was produced by an account that is unavailable (${why}); retry later or start a new conversation without previous_response_id`,
    headers,
    extra: { param: "previous_response_id" },
  };
}

type Decision = Action | Action[] | undefined;

/**
 * Decides `account.select`; undefined leaves the decision to the core. Without a conversation to
 * continue, with the runtime settings cached, and without a sticky key or with one whose binding
 * is cached (`StickyReader.cached`) and whose account is in the pool, nothing is read from the
 * store: the decision is returned at once, not as a promise (the usual request selects without an
 * async frame, see the plugin API's `HookHandler`). Any other binding (none cached, or its account
 * not usable) is read from the store, as before, so a key is only ever moved on what the store says.
 */
export function selectAccount(e: AccountSelectEvent, deps: SelectDeps): Decision | Promise<Decision> {
  if (e.candidates.length === 0) return undefined;
  const key = affinityKeyOf(e.headers, e.body);
  const responseId = e.body.previousResponseId?.trim();
  const settings = responseId ? null : deps.settings.cached?.();
  if (!settings) return selectReading(e, deps, key, responseId, poolOf(e));
  const pool = poolOf(e);
  if (key === null) return byStrategy(e, deps, pool, choiceContext(e, deps, settings.routingStrategy));
  const bound = deps.sticky.cached?.(key.key, { now: e.now });
  const owner = bound ? poolAccount(pool, bound.accountId) : undefined;
  if (owner) return stay(e, deps, pool, choiceContext(e, deps, settings.routingStrategy), key, owner);
  return selectReading(e, deps, key, responseId, pool);
}

/** The accounts this selection may route to. */
interface Pool {
  readonly state: RoutingState;
  readonly usable: readonly AccountSnapshot[];
  /** Whether `usable` is the whole list's usable accounts (else a subset of them). */
  readonly whole: boolean;
  /** The subset by id, made when first asked. */
  subsetById?: Map<string, AccountSnapshot>;
}

function poolOf(e: AccountSelectEvent): Pool {
  // The routing state of this account list, built once per list (and clock event), not per request.
  const state = RoutingState.of(e.all, e.now);
  // Usually the candidates are exactly the list's usable accounts; after a failed attempt (or with
  // a probe in flight) they are a subset, chosen from one by one as before.
  if (e.excluded.length === 0 && state.isUsableList(e.candidates))
    return { state, usable: state.usable, whole: true };
  const usable = e.candidates.filter((a) => isUsable(a, e.now) && !e.excluded.includes(a.id));
  return { state, usable, whole: false };
}

/** The pool's account with this id, if it may be routed to. */
function poolAccount(pool: Pool, id: string): AccountSnapshot | undefined {
  if (pool.whole) return pool.state.get(id);
  pool.subsetById ??= new Map(pool.usable.map((a) => [a.id, a]));
  return pool.subsetById.get(id);
}

function choiceContext(
  e: AccountSelectEvent,
  deps: SelectDeps,
  strategy: RoutingStrategy,
): SelectionContext & { readonly maxStreams: number } {
  return {
    strategy,
    now: e.now,
    random: e.random,
    lastSelected: deps.lastSelected,
    inFlight: deps.inFlight,
    maxStreams: deps.maxStreams(),
  };
}

/** Picks among `from` (the pool's accounts or some of them) by the routing strategy. */
function choose(
  deps: SelectDeps,
  pool: Pool,
  ctx: SelectionContext & { readonly maxStreams: number },
  from: readonly AccountSnapshot[],
): Choice | null {
  return from === pool.state.usable && deps.atCap
    ? pool.state.choose(ctx, deps.atCap(ctx.maxStreams))
    : pool.state.chooseAmong(from, ctx);
}

/** No affinity: the strategy alone. */
function byStrategy(
  e: AccountSelectEvent,
  deps: SelectDeps,
  pool: Pool,
  ctx: SelectionContext & { readonly maxStreams: number },
): Decision {
  const choice = choose(deps, pool, ctx, pool.usable);
  return choice ? route(deps, e, choice.accountId, choice.reason) : undefined;
}

/** The key's bound account is in the pool: it serves, unless it is at its stream cap and another is not. */
function stay(
  e: AccountSelectEvent,
  deps: SelectDeps,
  pool: Pool,
  ctx: SelectionContext & { readonly maxStreams: number },
  key: AffinityKey,
  owner: AccountSnapshot,
): Decision {
  if (deps.inFlight(owner.id) >= deps.maxStreams()) {
    // Spill this one request over without moving the key, so the cache stays warm for the rest.
    const others = pool.usable.filter((a) => a.id !== owner.id && deps.inFlight(a.id) < deps.maxStreams());
    const spill = others.length > 0 ? choose(deps, pool, ctx, others) : null;
    if (spill) return route(deps, e, spill.accountId, `sticky owner at its stream cap; ${spill.reason}`);
  }
  return [
    route(deps, e, owner.id, `sticky ${key.kind}`),
    { type: "sticky.touch", key: key.key, accountId: owner.id },
  ];
}

/** The selection that reads the store: continuity, the sticky binding, or settings not cached. */
async function selectReading(
  e: AccountSelectEvent,
  deps: SelectDeps,
  key: AffinityKey | null,
  responseId: string | undefined,
  pool: Pool,
): Promise<Decision> {
  const { usable } = pool;

  const bind = (k: AffinityKey, accountId: string, expected?: string | null): Action => ({
    type: "sticky.bind",
    key: k.key,
    kind: k.kind,
    accountId,
    ...(expected !== undefined ? { expectedAccountId: expected } : {}),
  });

  // 1. Continuity: the response lives only on the account that produced it.
  if (responseId) {
    const owner = await safely(deps, "responseOwner", () => deps.sticky.responseOwner(responseId), null);
    if (owner !== null) {
      if (!poolAccount(pool, owner)) return ownerUnavailable(e, owner, responseId);
      const routed = route(deps, e, owner, "previous_response_id owner");
      return key ? [routed, bind(key, owner)] : routed;
    }
    // Unknown owner (log pruned, or a response made elsewhere): balance normally; if the chosen
    // account does not have it, the upstream says so itself (never a silent wrong answer).
  }
  const strategy = await safely(
    deps,
    "runtimeSettings",
    async () => (await deps.settings.get()).routingStrategy,
    deps.fallbackStrategy,
  );
  const ctx = choiceContext(e, deps, strategy);

  // 2. Sticky key: stay on its account while that is usable; move (and rebind) when it is not.
  if (key) {
    const bound = await safely(deps, "lookup", () => deps.sticky.lookup(key.key, { now: e.now }), null);
    const owner = bound ? poolAccount(pool, bound.accountId) : undefined;
    if (owner) return stay(e, deps, pool, ctx, key, owner);
    const choice = choose(deps, pool, ctx, usable);
    if (!choice) return undefined;
    const moved = bound ? `sticky ${key.kind} moved from ${bound.accountId}; ` : `sticky ${key.kind} bound; `;
    return [
      route(deps, e, choice.accountId, moved + choice.reason),
      bind(key, choice.accountId, bound?.accountId ?? null),
    ];
  }

  // 3. No affinity: the strategy alone.
  return byStrategy(e, deps, pool, ctx);
}
