/**
 * Account selection for one attempt: the core decides which accounts are usable (status, reset,
 * cooldown, already tried) and what to answer when none is; the balancing plugin picks among the
 * usable ones through `account.select`.
 *
 * @module
 */
import type { AppDeps } from "../core/deps.ts";
import { GatewayError, rejectionError } from "../core/errors.ts";
import { isProbing, isUsable } from "../core/health.ts";
import type { AccountSnapshot, EpochMs } from "../core/types.ts";
import type { FireOutcome } from "../plugin-host/api.ts";

const BLOCKED_BY_LIMIT = new Set(["rate_limited", "quota_exceeded"]);
const OUT_FOR_GOOD = new Set(["paused", "reauth_required", "deactivated"]);

/**
 * The error when no account can take the request: none configured → 503 `no_accounts`; every
 * account that is not switched off is rate-limited or out of quota → 429 `usage_limit_reached`
 * with the earliest `resets_at` (epoch seconds); otherwise the last failure of this request, or
 * 503 `no_accounts` when nothing was tried.
 */
export function noAccountError(
  all: readonly AccountSnapshot[],
  now: EpochMs,
  last: GatewayError | null,
): GatewayError {
  if (all.length === 0) return new GatewayError("no_accounts", "No account is configured");
  const inPlay = all.filter((s) => !OUT_FOR_GOOD.has(s.status));
  const limited = inPlay.filter(
    (s) => BLOCKED_BY_LIMIT.has(s.status) && s.resetAt !== null && s.resetAt > now,
  );
  if (limited.length > 0 && limited.length === inPlay.length) {
    const earliest = Math.min(...limited.map((s) => s.resetAt!));
    const resetsAt = Math.ceil(earliest / 1000);
    return new GatewayError(
      "usage_limit_reached",
      undefined,
      { resets_at: resetsAt, resets_in_seconds: Math.max(0, Math.ceil((earliest - now) / 1000)) },
      { "retry-after": String(Math.max(1, Math.ceil((earliest - now) / 1000))) },
    );
  }
  if (last) return last;
  // Every account in play is backing off (or limited): the earliest end of those is known.
  const until = (s: AccountSnapshot): number | null =>
    s.cooldownUntil !== null && s.cooldownUntil > now
      ? s.cooldownUntil
      : BLOCKED_BY_LIMIT.has(s.status) && s.resetAt !== null && s.resetAt > now
        ? s.resetAt
        : null;
  const waits = inPlay.map(until);
  if (inPlay.length > 0 && waits.every((w) => w !== null)) {
    const earliest = Math.min(...(waits as number[]));
    const seconds = Math.max(1, Math.ceil((earliest - now) / 1000));
    return new GatewayError(
      "no_accounts",
      `No usable account is available right now; the first one is back in ${seconds} s`,
      { retry_after_seconds: seconds },
      { "retry-after": String(seconds) },
    );
  }
  return new GatewayError("no_accounts", "No usable account is available right now");
}

/** The usable accounts of one account list at one time, and how long that answer holds. */
interface UsableState {
  /** `all`'s usable accounts, in its order. */
  readonly usable: readonly AccountSnapshot[];
  /** Whether one of them is back from a backoff (a probe). */
  readonly anyProbing: boolean;
  readonly builtAt: EpochMs;
  /** The first moment an account's usability or probing can change (a backoff ends, a limit resets). */
  readonly validUntil: EpochMs;
}

/** Per account list (the snapshot cache hands out the same list until an account changes). */
const usableStates = new WeakMap<readonly AccountSnapshot[], UsableState>();

/**
 * The usable accounts of `all` at `now`, worked out once per list and kept until an account's
 * usability can change by itself (its `cooldownUntil` or `resetAt` passes): a request no longer
 * walks every account (about 35 µs for 200 accounts).
 */
function usableOf(all: readonly AccountSnapshot[], now: EpochMs): UsableState {
  const known = usableStates.get(all);
  if (known && now >= known.builtAt && now < known.validUntil) return known;
  const usable: AccountSnapshot[] = [];
  let anyProbing = false;
  let validUntil = Number.POSITIVE_INFINITY;
  for (const s of all) {
    if (s.cooldownUntil !== null && s.cooldownUntil > now) validUntil = Math.min(validUntil, s.cooldownUntil);
    if (s.resetAt !== null && s.resetAt > now) validUntil = Math.min(validUntil, s.resetAt);
    if (!isUsable(s, now)) continue;
    usable.push(s);
    if (isProbing(s, now)) anyProbing = true;
  }
  const state: UsableState = { usable, anyProbing, builtAt: now, validUntil };
  usableStates.set(all, state);
  return state;
}

export interface SelectRequest {
  readonly requestId: string;
  readonly model: string | null;
  readonly headers: Headers;
  readonly excluded: readonly string[];
  readonly promptCacheKey: string | null;
  readonly previousResponseId: string | null;
}

/** What selection uses of the gateway. */
export type SelectDeps = Pick<AppDeps, "services" | "dispatcher" | "snapshots">;

/**
 * Picks the account for the next attempt, or throws the GatewayError to answer with. Without a
 * `route.account` from any handler, the first usable account is taken (so a gateway without a
 * balancing strategy still serves). The account comes at once (not a promise) when the account list
 * is cached and every `account.select` handler decided at once: the usual request then selects
 * without a promise or an async frame.
 */
export function selectAccount(
  deps: SelectDeps,
  req: SelectRequest,
  last: GatewayError | null,
  /** Told the routing decision (for the debug log line); only passed when it will be written. */
  decided?: (d: RoutingDecision) => void,
): AccountSnapshot | Promise<AccountSnapshot> {
  const all = deps.snapshots.current();
  return all
    ? selectAmong(deps, all, req, last, decided)
    : deps.snapshots.list().then((list) => selectAmong(deps, list, req, last, decided));
}

function selectAmong(
  deps: SelectDeps,
  all: readonly AccountSnapshot[],
  req: SelectRequest,
  last: GatewayError | null,
  decided: ((d: RoutingDecision) => void) | undefined,
): AccountSnapshot | Promise<AccountSnapshot> {
  const { services } = deps;
  const now = services.now();
  const state = usableOf(all, now);
  // A copy: the hook's handlers get a list of their own, as before.
  const usable =
    req.excluded.length === 0
      ? state.usable.slice()
      : state.usable.filter((s) => !req.excluded.includes(s.id));
  if (usable.length === 0) throw noAccountError(all, now, last);
  // An account back from a backoff whose probe is in flight is left out while another can serve
  // (its next request would only wait behind the probe); alone, it is kept, and the request waits.
  let candidates = usable;
  if (state.anyProbing && usable.some((s) => isProbing(s, now))) {
    const leases = services.provider("leases");
    const free = usable.filter((s) => !(isProbing(s, now) && leases.inFlight(s.id) > 0));
    if (free.length > 0) candidates = free;
  }
  const outcome = deps.dispatcher.fire("account.select", {
    requestId: req.requestId,
    model: req.model,
    candidates,
    all,
    excluded: req.excluded,
    headers: req.headers,
    body: { promptCacheKey: req.promptCacheKey, previousResponseId: req.previousResponseId },
    now,
    random: services.random,
  });
  return outcome instanceof Promise
    ? outcome.then((o) => chosen(o, all, candidates, req, decided))
    : chosen(outcome, all, candidates, req, decided);
}

/** The account the handlers' actions chose (a `request.reject` is thrown). */
function chosen(
  outcome: FireOutcome,
  all: readonly AccountSnapshot[],
  candidates: readonly AccountSnapshot[],
  req: SelectRequest,
  decided: ((d: RoutingDecision) => void) | undefined,
): AccountSnapshot {
  for (const a of outcome.actions) {
    if (a.type === "request.reject") throw rejectionError(a);
    if (a.type === "route.account") {
      const chosen = all.find((s) => s.id === a.accountId);
      if (chosen && !OUT_FOR_GOOD.has(chosen.status) && !req.excluded.includes(chosen.id)) {
        decided?.({
          requestId: req.requestId,
          accountId: chosen.id,
          reason: a.reason ?? null,
          sticky: a.reason?.startsWith("sticky") === true,
          candidates: candidates.map((c) => c.id),
          excluded: req.excluded,
        });
        return chosen;
      }
    }
  }
  decided?.({
    requestId: req.requestId,
    accountId: candidates[0]!.id,
    reason: "no route.account from any handler: first usable account",
    sticky: false,
    candidates: candidates.map((c) => c.id),
    excluded: req.excluded,
  });
  return candidates[0]!;
}

/** One routing decision, as the debug log line shows it. */
export interface RoutingDecision {
  readonly requestId: string;
  readonly accountId: string;
  /** The balancing plugin's reason: the strategy (and share) or the sticky binding. */
  readonly reason: string | null;
  readonly sticky: boolean;
  readonly candidates: readonly string[];
  readonly excluded: readonly string[];
}

export { isUsable };
