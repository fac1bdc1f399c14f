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
import type { HookBus, HookEvents, HookName } from "./hooks.ts";

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

export class Dispatcher {
  constructor(
    private readonly bus: HookBus,
    private readonly applier: Pick<CoreApplier, "apply">,
  ) {}

  async fire<H extends HookName>(
    hook: H,
    event: HookEvents[H],
    options: { requestId?: string | null } = {},
  ): Promise<FireOutcome> {
    const outcome = await this.bus.run(hook, event);
    if (!outcome.actions.some(changesStore)) {
      return {
        actions: outcome.actions,
        attribution: outcome.attribution,
        results: outcome.results,
        failed: outcome.failed,
        applied: NONE_APPLIED,
      };
    }
    // Attribute each action to the handler that returned it, for the account_events row.
    const applied = await this.applier.apply(outcome.actions, {
      source: hook,
      plugins: outcome.attribution,
      requestId: options.requestId ?? (event as { requestId?: string }).requestId ?? null,
      versions: snapshotVersions(event),
      now: (event as { now?: number }).now,
    });
    return { ...outcome, applied };
  }
}
