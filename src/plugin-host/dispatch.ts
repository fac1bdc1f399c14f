/**
 * Fires a hook: runs its handlers (the bus) and gives the store-changing actions (account and data
 * actions) to the core's applier, with the versions of the account snapshots the event carried as
 * compare-and-set guards. Request actions are returned for the caller (the proxy) to act on.
 *
 * @module
 */
import type { AccountSnapshot } from "../core/types.ts";
import { changesStore } from "./actions.ts";
import type { FireOutcome } from "./api.ts";
import type { CoreApplier } from "./apply-data.ts";
import type { HookBus, HookEvents, HookName, HookOutcome } from "./hooks.ts";

/** The account snapshots an event carries (its `account`, and `candidates`/`all` of a selection). */
function snapshotVersions(event: object): Map<string, number> {
  const versions = new Map<string, number>();
  const add = (s: AccountSnapshot | null | undefined) => {
    if (s && typeof s.id === "string" && typeof s.version === "number") versions.set(s.id, s.version);
  };
  const e = event as {
    account?: AccountSnapshot | null;
    all?: readonly AccountSnapshot[];
    candidates?: readonly AccountSnapshot[];
  };
  for (const s of e.all ?? []) add(s);
  for (const s of e.candidates ?? []) add(s);
  add(e.account);
  return versions;
}

const NONE_APPLIED: FireOutcome["applied"] = Object.freeze([]);
/** No options: the request id is the event's. */
const NO_OPTIONS: { requestId?: string | null } = Object.freeze({});

/** Told every fired hook's outcome (the metrics' counters). */
export type FireObserver = (hook: HookName, outcome: FireOutcome) => void;

export class Dispatcher {
  constructor(
    private readonly bus: HookBus,
    private readonly applier: Pick<CoreApplier, "apply"> & Partial<Pick<CoreApplier, "applyAtOnce">>,
    private readonly observe?: FireObserver,
  ) {}

  /**
   * Fires `hook`. The outcome comes at once (not a promise) when every handler decided at once and
   * nothing changes the store (see `HookBus.run`); `GatewayServices.fire` is this, as a promise.
   */
  fire<H extends HookName>(
    hook: H,
    event: HookEvents[H],
    options: { requestId?: string | null } = NO_OPTIONS,
  ): FireOutcome | Promise<FireOutcome> {
    const outcome = this.bus.run(hook, event);
    return outcome instanceof Promise
      ? outcome.then((o) => this.#act(hook, event, options, o))
      : this.#act(hook, event, options, outcome);
  }

  #act<H extends HookName>(
    hook: H,
    event: HookEvents[H],
    options: { requestId?: string | null },
    outcome: HookOutcome,
  ): FireOutcome | Promise<FireOutcome> {
    if (!outcome.actions.some(changesStore)) {
      return this.#observed(hook, {
        actions: outcome.actions,
        attribution: outcome.attribution,
        results: outcome.results,
        failed: outcome.failed,
        applied: NONE_APPLIED,
      });
    }
    const requestId = options.requestId ?? (event as { requestId?: string }).requestId ?? null;
    const now = (event as { now?: number }).now;
    // Only touches that are known to write nothing (a sticky binding used again within its
    // refresh interval): the same results, at once.
    const atOnce = this.applier.applyAtOnce?.(outcome.actions, {
      source: hook,
      plugins: outcome.attribution,
      requestId,
      now,
    });
    if (atOnce) return this.#observed(hook, { ...outcome, applied: atOnce });
    // Attribute each action to the handler that returned it, for the account_events row.
    return this.applier
      .apply(outcome.actions, {
        source: hook,
        plugins: outcome.attribution,
        requestId,
        versions: snapshotVersions(event),
        now,
      })
      .then((applied) => this.#observed(hook, { ...outcome, applied }));
  }

  #observed(hook: HookName, outcome: FireOutcome): FireOutcome {
    this.observe?.(hook, outcome);
    return outcome;
  }
}
