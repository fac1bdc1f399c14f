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
import { type Choice, RoutingState, type RoutingStrategy } from "./strategies.ts";

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

/** Decides `account.select`; undefined leaves the decision to the core. */
export async function selectAccount(
  e: AccountSelectEvent,
  deps: SelectDeps,
): Promise<Action | Action[] | undefined> {
  if (e.candidates.length === 0) return undefined;
  // The routing state of this account list, built once per list (and clock event), not per request.
  const state = RoutingState.of(e.all, e.now);
  // Usually the candidates are exactly the list's usable accounts; after a failed attempt (or with
  // a probe in flight) they are a subset, chosen from one by one as before.
  const whole = e.excluded.length === 0 && state.isUsableList(e.candidates);
  const usable = whole
    ? state.usable
    : e.candidates.filter((a) => isUsable(a, e.now) && !e.excluded.includes(a.id));
  let subsetById: Map<string, AccountSnapshot> | undefined;
  const usableById = (id: string): AccountSnapshot | undefined => {
    if (whole) return state.get(id);
    subsetById ??= new Map(usable.map((a) => [a.id, a]));
    return subsetById.get(id);
  };
  const key = affinityKeyOf(e.headers, e.body);

  const bind = (k: AffinityKey, accountId: string, expected?: string | null): Action => ({
    type: "sticky.bind",
    key: k.key,
    kind: k.kind,
    accountId,
    ...(expected !== undefined ? { expectedAccountId: expected } : {}),
  });

  // 1. Continuity: the response lives only on the account that produced it.
  const responseId = e.body.previousResponseId?.trim();
  if (responseId) {
    const owner = await safely(deps, "responseOwner", () => deps.sticky.responseOwner(responseId), null);
    if (owner !== null) {
      if (!usableById(owner)) return ownerUnavailable(e, owner, responseId);
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
  const ctx = {
    strategy,
    now: e.now,
    random: e.random,
    lastSelected: deps.lastSelected,
    inFlight: deps.inFlight,
    maxStreams: deps.maxStreams(),
  };
  const choose = (from: readonly AccountSnapshot[]): Choice | null =>
    from === state.usable && deps.atCap
      ? state.choose(ctx, deps.atCap(ctx.maxStreams))
      : state.chooseAmong(from, ctx);

  // 2. Sticky key: stay on its account while that is usable; move (and rebind) when it is not.
  if (key) {
    const bound = await safely(deps, "lookup", () => deps.sticky.lookup(key.key, { now: e.now }), null);
    const owner = bound ? usableById(bound.accountId) : undefined;
    if (owner) {
      if (deps.inFlight(owner.id) >= deps.maxStreams()) {
        // Spill this one request over without moving the key, so the cache stays warm for the rest.
        const others = usable.filter((a) => a.id !== owner.id && deps.inFlight(a.id) < deps.maxStreams());
        const spill = others.length > 0 ? choose(others) : null;
        if (spill) return route(deps, e, spill.accountId, `sticky owner at its stream cap; ${spill.reason}`);
      }
      return [
        route(deps, e, owner.id, `sticky ${key.kind}`),
        { type: "sticky.touch", key: key.key, accountId: owner.id },
      ];
    }
    const choice = choose(usable);
    if (!choice) return undefined;
    const moved = bound ? `sticky ${key.kind} moved from ${bound.accountId}; ` : `sticky ${key.kind} bound; `;
    return [
      route(deps, e, choice.accountId, moved + choice.reason),
      bind(key, choice.accountId, bound?.accountId ?? null),
    ];
  }

  // 3. No affinity: the strategy alone.
  const choice = choose(usable);
  return choice ? route(deps, e, choice.accountId, choice.reason) : undefined;
}
