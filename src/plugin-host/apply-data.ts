/**
 * The core's one applier of plugin decisions: account actions go to the account state table
 * ({@link ActionApplier}: one transaction, compare-and-set on the version, an `account_events` row);
 * data actions (`sticky.*`, `tokens.save`, `usage.record`) go to the core's stores through
 * {@link DataPorts}, each with its own compare-and-set guard. Request actions are not applied here:
 * the proxy acts on them.
 *
 * Who may do what is checked here too: `tokens.save` only from the plugin that provides
 * `credentials` (status `refused` otherwise). Nothing of a token is ever logged.
 *
 * @module
 */
import type { EpochMs } from "../core/types.ts";
import { type Action, type DataAction, isAccountAction, isDataAction, validateAction } from "./actions.ts";
import type { ActionApplier, ApplyContext, ApplyLog, ApplyResult } from "./apply.ts";

/** The stores data actions change; wired by the composition root, each with compare-and-set. */
export interface DataPorts {
  /** Binds a sticky key (only if still bound to `expectedAccountId`, when given); false when stale. */
  stickyBind(a: Extract<DataAction, { type: "sticky.bind" }>, now: EpochMs): Promise<boolean>;
  /** Slides a binding still held by `accountId`; false when nothing was written. */
  stickyTouch(a: Extract<DataAction, { type: "sticky.touch" }>, now: EpochMs): Promise<boolean>;
  /**
   * True when `stickyTouch` would write nothing and answer false, known at once (from a cache);
   * false when it cannot tell. Optional.
   */
  stickyTouchSkips?(a: Extract<DataAction, { type: "sticky.touch" }>, now: EpochMs): boolean;
  /** Removes a binding (still held by `expectedAccountId`, when given); false when none matched. */
  stickyForget(a: Extract<DataAction, { type: "sticky.forget" }>): Promise<boolean>;
  saveTokens(a: Extract<DataAction, { type: "tokens.save" }>): Promise<"saved" | "stale" | "missing">;
  /** Stores a usage reading; false when the account is unknown. */
  recordUsage(a: Extract<DataAction, { type: "usage.record" }>, now: EpochMs): Promise<boolean>;
}

export interface CoreApplierOptions {
  readonly accounts: ActionApplier;
  readonly data: DataPorts;
  readonly log: ApplyLog;
  readonly clock: () => EpochMs;
  /** The plugin registered as the `credentials` provider, if any. */
  readonly credentialsProvider: () => string | null;
}

/** Applies every store-changing action of a decision; never throws for a bad or stale action. */
export class CoreApplier {
  constructor(private readonly o: CoreApplierOptions) {}

  async apply(actions: readonly Action[], ctx: ApplyContext): Promise<readonly ApplyResult[]> {
    const results: ApplyResult[] = [];
    if (actions.some(isAccountAction)) results.push(...(await this.o.accounts.apply(actions, ctx)));
    const now = ctx.now ?? this.o.clock();
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i]!;
      if (!isDataAction(a)) continue;
      results.push(this.#logged(a, await this.#applyData(a, ctx.plugins?.[i] ?? null, now), i, ctx));
    }
    return results;
  }

  /**
   * What `apply` would answer, given at once, when it is known without the store: every
   * store-changing action is a `sticky.touch` that would write nothing (`DataPorts.stickyTouchSkips`).
   * Null otherwise (then call `apply`). The same results and log lines as `apply`.
   */
  applyAtOnce(actions: readonly Action[], ctx: ApplyContext): readonly ApplyResult[] | null {
    const { data } = this.o;
    if (!data.stickyTouchSkips) return null;
    const now = ctx.now ?? this.o.clock();
    for (const a of actions) {
      if (isDataAction(a) ? a.type !== "sticky.touch" : isAccountAction(a)) return null;
      if (a.type === "sticky.touch" && (validateAction(a) !== null || !data.stickyTouchSkips(a, now)))
        return null;
    }
    const results: ApplyResult[] = [];
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i]!;
      if (a.type === "sticky.touch") results.push(this.#logged(a, { action: a, status: "noop" }, i, ctx));
    }
    return results;
  }

  #logged(a: DataAction, r: ApplyResult, i: number, ctx: ApplyContext): ApplyResult {
    const fields = {
      action: a.type,
      accountId: "accountId" in a ? a.accountId : a.expectedAccountId,
      source: ctx.source,
      plugin: ctx.plugins?.[i] ?? undefined,
      status: r.status,
      requestId: ctx.requestId ?? undefined,
      detail: r.detail,
    };
    if (r.status === "refused" || r.status === "invalid") this.o.log.warn(fields, "data action refused");
    else this.o.log.debug(fields, "data action");
    return r;
  }

  async #applyData(a: DataAction, plugin: string | null, now: EpochMs): Promise<ApplyResult> {
    const problem = validateAction(a);
    if (problem) return { action: a, status: "invalid", detail: problem };
    try {
      switch (a.type) {
        case "sticky.bind":
          return { action: a, status: (await this.o.data.stickyBind(a, now)) ? "applied" : "stale" };
        case "sticky.touch":
          return { action: a, status: (await this.o.data.stickyTouch(a, now)) ? "applied" : "noop" };
        case "sticky.forget":
          return { action: a, status: (await this.o.data.stickyForget(a)) ? "applied" : "noop" };
        case "tokens.save": {
          const provider = this.o.credentialsProvider();
          if (plugin === null || plugin !== provider) {
            return {
              action: redacted(a),
              status: "refused",
              detail: `only the credentials provider (${provider ?? "none"}) may save tokens`,
            };
          }
          const saved = await this.o.data.saveTokens(a);
          return { action: redacted(a), status: saved === "saved" ? "applied" : saved };
        }
        case "usage.record":
          return { action: a, status: (await this.o.data.recordUsage(a, now)) ? "applied" : "missing" };
      }
    } catch (e) {
      return {
        action: a.type === "tokens.save" ? redacted(a) : a,
        status: "invalid",
        detail: e instanceof Error ? e.message.split("\n")[0] : String(e),
      };
    }
  }
}

/** A `tokens.save` without its secrets, for results and logs. */
function redacted(a: Extract<DataAction, { type: "tokens.save" }>): Action {
  return {
    ...a,
    accessToken: "[redacted]",
    refreshToken: "[redacted]",
    idToken: "[redacted]",
    replacing: undefined,
  };
}
