/**
 * Hook points: named places where plugins decide. Each hook has a typed event; a handler returns
 * actions (plain data, see `actions.ts`) and never touches the store. The core runs the handlers
 * and hands the account actions to the action applier.
 *
 * Order of a request's hooks:
 *   request.admit → account.select → (upstream call) → upstream.failed | request.completed
 * Background hooks: refresh.failed, usage.fetched, usage.failed.
 *
 * Handlers of one hook run by ascending `order` (default 0; built-ins use 0), then by the order
 * their plugins were registered (built-ins first, then `CODEX_LB_PLUGINS` in list order). A handler
 * may stop the chain (`{ stop: true }`); a request decision (`request.reject`, `route.account`) stops
 * it too, after the rest of that handler's list (so a route can carry its `sticky.bind`). So an operator plugin with `order: -10` can both add to and override a built-in rule.
 *
 * @module
 */

import type { FailureDetails } from "../core/failures.ts";
import type { AccountSnapshot, EpochMs, UsageWindow } from "../core/types.ts";
import { type Action, isTerminal, validateAction } from "./actions.ts";

export type { FailureDetails } from "../core/failures.ts";

/** Every hook, in the order a request meets them, then the background ones. */
export const hookNames = [
  "request.admit",
  "account.select",
  "upstream.failed",
  "request.completed",
  "refresh.failed",
  "usage.fetched",
  "usage.failed",
] as const;
export type HookName = (typeof hookNames)[number];

export interface RequestAdmitEvent {
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  /** Address of the socket peer. */
  readonly peerIp: string | null;
  /**
   * The client's address (the peer, or the one a trusted proxy forwarded); null when unknown or
   * when a trusted proxy's forwarding header was malformed — treat null as "not allowed".
   */
  readonly clientIp: string | null;
  /** Which surface the request is for. */
  readonly surface: "proxy" | "admin" | "public";
  readonly now: EpochMs;
}

export interface AccountSelectEvent {
  readonly requestId: string;
  readonly model: string | null;
  /** Accounts the core considers usable right now (status, reset and exclusion already applied). */
  readonly candidates: readonly AccountSnapshot[];
  /** Every configured account, for handlers that explain why nothing is usable. */
  readonly all: readonly AccountSnapshot[];
  /** Accounts already tried by this request (failover). */
  readonly excluded: readonly string[];
  readonly headers: Headers;
  /** The request body's fields that matter for routing. */
  readonly body: Readonly<{ promptCacheKey?: string | null; previousResponseId?: string | null }>;
  readonly now: EpochMs;
  /** Uniform random in [0, 1); seeded in tests. */
  readonly random: () => number;
}

export interface UpstreamFailedEvent extends FailureDetails {
  readonly requestId: string;
  readonly account: AccountSnapshot;
  /** Where the failure was seen: an HTTP error status, the first SSE event of a 200, or the socket. */
  readonly phase: "http" | "sse" | "transport";
  /** Reset hints from the body: `resets_at` (epoch seconds) and `resets_in_seconds`. */
  readonly resetsAt: EpochMs | null;
  readonly resetsInSeconds: number | null;
  readonly now: EpochMs;
}

export interface RequestCompletedEvent {
  readonly requestId: string;
  readonly account: AccountSnapshot | null;
  readonly ok: boolean;
  readonly httpStatus: number;
  readonly now: EpochMs;
}

export interface RefreshFailedEvent extends FailureDetails {
  readonly account: AccountSnapshot;
  /** What started the refresh. */
  readonly trigger: "request" | "background" | "upstream_401" | "usage";
  readonly now: EpochMs;
  /**
   * When the account's current access token expires (null: unknown, or refused by the upstream).
   * A transient failure while it is still valid need not take the account out: it is served with it.
   */
  readonly accessTokenExpiresAt?: EpochMs | null;
}

/** Credits as `/wham/usage` reports them (pay-as-you-go beyond the plan's windows). */
export interface UsageCredits {
  readonly hasCredits: boolean;
  readonly unlimited: boolean;
  readonly balance: number | null;
}

export interface UsageFetchedEvent {
  readonly account: AccountSnapshot;
  readonly primary: UsageWindow | null;
  readonly secondary: UsageWindow | null;
  /** Credits, when the answer carried them. */
  readonly credits?: UsageCredits | null;
  readonly now: EpochMs;
}

export interface UsageFailedEvent extends FailureDetails {
  readonly account: AccountSnapshot;
  readonly now: EpochMs;
}

/** The event type of each hook. */
export interface HookEvents {
  "request.admit": RequestAdmitEvent;
  "account.select": AccountSelectEvent;
  "upstream.failed": UpstreamFailedEvent;
  "request.completed": RequestCompletedEvent;
  "refresh.failed": RefreshFailedEvent;
  "usage.fetched": UsageFetchedEvent;
  "usage.failed": UsageFailedEvent;
}

/** What a handler may return: nothing, one action, a list, or a list plus `stop`. */
export type HookReturn =
  | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that decides nothing simply returns.
  | void
  | Action
  | readonly Action[]
  | { readonly actions?: readonly Action[]; readonly stop?: boolean };

export interface HookCall {
  /** The plugin whose handler this is. */
  readonly plugin: string;
  /** Actions returned by the handlers that ran before this one, in order. */
  readonly previous: readonly Action[];
}

export type HookHandler<H extends HookName> = (
  event: HookEvents[H],
  call: HookCall,
) => HookReturn | Promise<HookReturn>;

export interface HandlerResult {
  readonly plugin: string;
  readonly status: "ok" | "error" | "invalid";
  readonly error?: string;
}

/** The outcome of running one hook: the accepted actions and what each handler did. */
export interface HookOutcome {
  readonly actions: readonly Action[];
  /** The plugin that returned each action (same index as `actions`). */
  readonly attribution: readonly string[];
  readonly results: readonly HandlerResult[];
  /** True when a handler threw; `request.admit` treats that as a refusal (fail closed). */
  readonly failed: boolean;
}

/** A handler as registered, with what its runs reuse prepared once (no per-request allocation). */
interface Registered {
  readonly plugin: string;
  readonly order: number;
  readonly seq: number;
  readonly handler: HookHandler<HookName>;
  /** Its call when no earlier handler returned an action (the usual case). */
  readonly firstCall: HookCall;
  /** Its result when it ran fine. */
  readonly ok: HandlerResult;
}

const NO_ACTIONS: readonly Action[] = Object.freeze([]);
const NOTHING: HookOutcome = Object.freeze({
  actions: NO_ACTIONS,
  attribution: Object.freeze([]) as readonly string[],
  results: Object.freeze([]) as readonly HandlerResult[],
  failed: false,
});

export interface HookLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Holds the handlers of every hook and runs them. Knows nothing of the store or HTTP. Each hook's
 * handler list is kept compiled (sorted, with each handler's reusable call and result) as handlers
 * register, so a run only walks an array.
 */
export class HookBus {
  readonly #handlers = new Map<HookName, Registered[]>();
  #seq = 0;
  #sealed = false;

  constructor(readonly log: HookLog) {}

  /** Registers a handler; refused for an unknown hook name or after start-up (`seal()`). */
  on<H extends HookName>(
    plugin: string,
    hook: H,
    handler: HookHandler<H>,
    options: { order?: number } = {},
  ): void {
    if (!(hookNames as readonly string[]).includes(hook)) {
      throw new Error(
        `plugin ${plugin}: unknown hook ${JSON.stringify(hook)} (known: ${hookNames.join(", ")})`,
      );
    }
    if (this.#sealed) throw new Error(`plugin ${plugin}: hooks can only be registered during setup`);
    if (typeof handler !== "function")
      throw new Error(`plugin ${plugin}: handler for ${hook} is not a function`);
    const list = this.#handlers.get(hook) ?? [];
    list.push({
      plugin,
      order: options.order ?? 0,
      seq: this.#seq++,
      handler: handler as HookHandler<HookName>,
      firstCall: Object.freeze({ plugin, previous: NO_ACTIONS }),
      ok: Object.freeze({ plugin, status: "ok" as const }),
    });
    list.sort((a, b) => a.order - b.order || a.seq - b.seq);
    this.#handlers.set(hook, list);
  }

  seal(): void {
    this.#sealed = true;
  }

  /** The plugins with a handler on `hook`, in the order they run. */
  handlersOf(hook: HookName): readonly string[] {
    return (this.#handlers.get(hook) ?? []).map((r) => r.plugin);
  }

  /**
   * Runs `hook`'s handlers. The outcome comes at once (not a promise) when every handler decided at
   * once: a request then passes the hook without a promise or an async frame. Only a handler's
   * promise is awaited; the handlers after it run when it settles, in the same order.
   */
  run<H extends HookName>(hook: H, event: HookEvents[H]): HookOutcome | Promise<HookOutcome> {
    const list = this.#handlers.get(hook);
    if (!list || list.length === 0) return NOTHING;
    const run: Run = { hook, event, actions: [], attribution: [], results: [], failed: false, pending: null };
    const waiting = this.#onward(run, list, 0);
    return waiting < 0 ? outcomeOf(run) : this.#finish(run, list, waiting);
  }

  /**
   * Runs the handlers from `i` on, each taken at once, until one answers with a promise (kept in
   * `run.pending`; its index is returned) or the chain ends or stops (-1).
   */
  #onward(run: Run, list: readonly Registered[], i: number): number {
    for (; i < list.length; i++) {
      const r = list[i]!;
      const out = this.#call(run, r);
      if (isThenable(out)) {
        run.pending = out;
        return i;
      }
      if (this.#take(run, r, out)) return -1;
    }
    return -1;
  }

  /** The rest of a run whose handler `i` answered with a promise. */
  async #finish(run: Run, list: readonly Registered[], i: number): Promise<HookOutcome> {
    while (i >= 0) {
      const r = list[i]!;
      let ret: HookReturn | typeof THREW;
      try {
        ret = await run.pending!;
      } catch (e) {
        ret = this.#threw(run, r, e);
      }
      i = this.#take(run, r, ret) ? -1 : this.#onward(run, list, i + 1);
    }
    return outcomeOf(run);
  }

  /** Calls one handler; a throw is recorded (and answered as {@link THREW}). */
  #call(run: Run, r: Registered): HookReturn | PromiseLike<HookReturn> | typeof THREW {
    try {
      const call =
        run.actions.length === 0 ? r.firstCall : { plugin: r.plugin, previous: run.actions.slice() };
      return r.handler(run.event, call);
    } catch (e) {
      return this.#threw(run, r, e);
    }
  }

  #threw(run: Run, r: Registered, e: unknown): typeof THREW {
    run.failed = true;
    const error = e instanceof Error ? e.message : String(e);
    run.results.push({ plugin: r.plugin, status: "error", error });
    this.log.error({ hook: run.hook, plugin: r.plugin, err: error }, "hook handler threw");
    return THREW;
  }

  /** Takes one handler's answer into the run; true when the chain stops there. */
  #take(run: Run, r: Registered, ret: HookReturn | typeof THREW): boolean {
    if (ret === THREW) return false;
    const returned = actionsOf(ret);
    let status: HandlerResult["status"] = "ok";
    let terminal = false;
    for (const a of returned) {
      const problem = validateAction(a);
      if (problem) {
        status = "invalid";
        this.log.warn(
          { hook: run.hook, plugin: r.plugin, problem },
          "hook handler returned an invalid action; dropped",
        );
        continue;
      }
      // The first request decision wins; the handler's other actions (a sticky binding next to its
      // route) still count, a second decision in the same list does not.
      if (isTerminal(a)) {
        if (terminal) continue;
        terminal = true;
      }
      run.actions.push(a);
      run.attribution.push(r.plugin);
    }
    run.results.push(
      status === "invalid" ? { plugin: r.plugin, status, error: "invalid action dropped" } : r.ok,
    );
    return terminal || stops(ret);
  }
}

/** A handler's throw, as `#call` answers it (already recorded). */
const THREW: unique symbol = Symbol("threw");

/** One run of a hook, as its handlers' answers are taken in. */
interface Run {
  readonly hook: HookName;
  readonly event: HookEvents[HookName];
  readonly actions: Action[];
  readonly attribution: string[];
  readonly results: HandlerResult[];
  failed: boolean;
  /** The promise of the handler being waited for. */
  pending: PromiseLike<HookReturn> | null;
}

function outcomeOf(run: Run): HookOutcome {
  return { actions: run.actions, attribution: run.attribution, results: run.results, failed: run.failed };
}

function isThenable(v: unknown): v is PromiseLike<HookReturn> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === "function";
}

/** The actions a handler returned, as one list (made without allocating, but for a lone action). */
function actionsOf(ret: HookReturn): readonly Action[] {
  if (ret === undefined || ret === null) return NO_ACTIONS;
  if (Array.isArray(ret)) return ret;
  if (typeof ret === "object" && "type" in ret) return [ret as Action];
  return (ret as { actions?: readonly Action[] }).actions ?? NO_ACTIONS;
}

/** Whether a handler's answer stops the chain (`{ stop: true }`). */
function stops(ret: HookReturn): boolean {
  return (
    typeof ret === "object" &&
    ret !== null &&
    !Array.isArray(ret) &&
    !("type" in ret) &&
    (ret as { stop?: boolean }).stop === true
  );
}
