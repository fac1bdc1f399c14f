/**
 * The action applier: the one place where hook decisions change the store. It validates actions,
 * applies each account action with compare-and-set on the account's `version`, writes an
 * `account_events` row per change, all in one transaction, and logs what it did.
 *
 * Which status an action may start from, and what it leaves behind, is the table
 * {@link transitions}; nothing else in the code base moves an account between statuses.
 *
 * @module
 */
import type { Kysely, Transaction } from "kysely";
import { systemClock } from "../core/clock.ts";
import type { AccountStatus, EpochMs } from "../core/types.ts";
import { type AuditEntry, audit } from "../store/audit.ts";
import type { AccountUpdate, Database } from "../store/schema.ts";
import { type AccountAction, type Action, isAccountAction, validateAction } from "./actions.ts";

type Row = {
  status: AccountStatus;
  version: number;
  failure_streak: number;
  cooldown_until: number | null;
  reset_at: number | null;
  routing_policy: string;
};

interface Transition<T extends AccountAction["type"]> {
  /** Statuses the action may be applied in; in any other it is `not_applicable`. */
  readonly from: readonly AccountStatus[];
  /** The columns to write, or null when the account already is as the action wants (`noop`). */
  readonly change: (a: Extract<AccountAction, { type: T }>, row: Row, now: EpochMs) => AccountUpdate | null;
}

const ALL: readonly AccountStatus[] = [
  "active",
  "rate_limited",
  "quota_exceeded",
  "paused",
  "reauth_required",
  "deactivated",
];
const cleared = {
  reset_at: null,
  blocked_at: null,
  cooldown_until: null,
  failure_streak: 0,
  status_reason: null,
} as const;

/** The account state machine: one row per action type. */
export const transitions: { readonly [T in AccountAction["type"]]: Transition<T> } = {
  "account.deactivate": {
    // A dead account is never "downgraded" back to reauth_required.
    from: ["active", "rate_limited", "quota_exceeded", "paused", "reauth_required"],
    change: (a, row, now) =>
      row.status === a.status
        ? null
        : {
            status: a.status,
            status_reason: a.reason,
            blocked_at: now,
            reset_at: null,
            cooldown_until: null,
          },
  },
  "account.rate_limit": {
    from: ["active", "rate_limited"],
    change: (a, row, now) =>
      row.status === "rate_limited" && row.reset_at === a.resetAt
        ? null
        : { status: "rate_limited", status_reason: a.reason, reset_at: a.resetAt, blocked_at: now },
  },
  "account.quota_exceeded": {
    from: ["active", "rate_limited", "quota_exceeded"],
    change: (a, row, now) =>
      row.status === "quota_exceeded" && row.reset_at === a.resetAt
        ? null
        : {
            status: "quota_exceeded",
            status_reason: a.reason ?? "Quota exceeded",
            reset_at: a.resetAt,
            blocked_at: now,
          },
  },
  "account.cooldown": {
    from: ["active", "rate_limited", "quota_exceeded"],
    change: (a, row) => ({
      cooldown_until: Math.max(a.until, row.cooldown_until ?? 0),
      failure_streak: row.failure_streak + 1,
    }),
  },
  "account.reactivate": {
    // Not from reauth_required: only a new login of the identity brings fresh tokens. A deactivated
    // account may be put back by an explicit decision (an operator who knows it was restored).
    from: ["active", "rate_limited", "quota_exceeded", "paused", "deactivated"],
    change: (_a, row) =>
      row.status === "active" && row.failure_streak === 0 && row.cooldown_until === null
        ? null
        : { status: "active", ...cleared },
  },
  "account.pause": {
    from: ["active", "rate_limited", "quota_exceeded", "paused"],
    change: (a, row) =>
      row.status === "paused"
        ? null
        : { status: "paused", status_reason: a.reason ?? "Paused by operator", cooldown_until: null },
  },
  "account.routing_policy": {
    from: ALL,
    change: (a, row) => (row.routing_policy === a.routingPolicy ? null : { routing_policy: a.routingPolicy }),
  },
  "account.healthy": {
    from: ALL,
    change: (_a, row) =>
      row.failure_streak === 0 && row.cooldown_until === null
        ? null
        : { failure_streak: 0, cooldown_until: null },
  },
};

/** Actions that only clear transient state are not worth an `account_events` row. */
const unrecorded = new Set<AccountAction["type"]>(["account.healthy"]);

export type ApplyStatus =
  | "applied"
  | "noop"
  | "stale"
  | "not_applicable"
  | "missing"
  | "invalid"
  /** Not allowed for the plugin that decided it (e.g. `tokens.save` from a non-provider). */
  | "refused";

export interface ApplyResult {
  readonly action: Action;
  readonly status: ApplyStatus;
  readonly fromStatus?: AccountStatus;
  readonly toStatus?: AccountStatus;
  readonly detail?: string;
}

export interface ApplyContext {
  /** The hook (`refresh.failed`) or surface (`admin`) the actions come from. */
  readonly source: string;
  /** The plugin that decided, per action index, when known. */
  readonly plugins?: readonly (string | null)[];
  readonly requestId?: string | null;
  /**
   * Account versions the decision was made on (from the event's snapshots). An action without its
   * own `expectedVersion` is compared against these, so a decision made on stale data applies nothing.
   */
  readonly versions?: ReadonlyMap<string, number>;
  readonly now?: EpochMs;
  /**
   * The admin change these actions are, written to `audit_logs` in the same transaction when an
   * action applied (or was already so: `noop`), so the trail never disagrees with the store.
   */
  readonly audit?: Omit<AuditEntry, "at">;
}

export interface ApplyLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type AppliedListener = (results: readonly ApplyResult[]) => void;

export class ActionApplier {
  readonly #listeners: AppliedListener[] = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: ApplyLog,
    private readonly clock: () => EpochMs = systemClock.now,
  ) {}

  /** Called after each committed batch that applied something (e.g. to drop caches). */
  onApplied(fn: AppliedListener): void {
    this.#listeners.push(fn);
  }

  /**
   * Applies the account actions in `actions` (request actions are ignored) in one transaction.
   * Never throws for a bad or stale action: each gets a result status instead.
   */
  async apply(actions: readonly Action[], ctx: ApplyContext): Promise<readonly ApplyResult[]> {
    const now = ctx.now ?? this.clock();
    const work = actions.map((a, i) => ({ a, i })).filter(({ a }) => isAccountAction(a));
    if (work.length === 0) return [];
    const results = await this.db.transaction().execute(async (trx) => {
      const out: ApplyResult[] = [];
      // Versions advance as this batch applies, so several actions decided on one snapshot compose.
      const expected = new Map(ctx.versions ?? []);
      for (const { a, i } of work) {
        out.push(await this.#applyOne(trx, a as AccountAction, expected, ctx, ctx.plugins?.[i] ?? null, now));
      }
      if (ctx.audit && out.some((r) => r.status === "applied" || r.status === "noop"))
        await audit(trx, { ...ctx.audit, at: now });
      return out;
    });
    for (const r of results) {
      const fields = {
        action: r.action.type,
        accountId: (r.action as AccountAction).accountId,
        source: ctx.source,
        status: r.status,
        from: r.fromStatus,
        to: r.toStatus,
        requestId: ctx.requestId ?? undefined,
        detail: r.detail,
      };
      if (r.status === "applied") this.log.info(fields, "account action applied");
      else if (r.status === "invalid") this.log.warn(fields, "account action refused");
      else this.log.debug(fields, "account action skipped");
    }
    if (results.some((r) => r.status === "applied")) for (const fn of this.#listeners) fn(results);
    return results;
  }

  async #applyOne(
    trx: Transaction<Database>,
    action: AccountAction,
    expected: Map<string, number>,
    ctx: ApplyContext,
    plugin: string | null,
    now: EpochMs,
  ): Promise<ApplyResult> {
    const problem = validateAction(action);
    if (problem) return { action, status: "invalid", detail: problem };
    const row = await trx
      .selectFrom("accounts")
      .select(["status", "version", "failure_streak", "cooldown_until", "reset_at", "routing_policy"])
      .where("id", "=", action.accountId)
      .executeTakeFirst();
    if (!row) return { action, status: "missing" };
    const want = action.expectedVersion ?? expected.get(action.accountId);
    if (want !== undefined && want !== row.version) {
      return {
        action,
        status: "stale",
        fromStatus: row.status,
        detail: `expected version ${want}, found ${row.version}`,
      };
    }
    const t = transitions[action.type] as Transition<typeof action.type>;
    if (!t.from.includes(row.status)) return { action, status: "not_applicable", fromStatus: row.status };
    const change = t.change(action as never, row, now);
    if (change === null) return { action, status: "noop", fromStatus: row.status, toStatus: row.status };
    const updated = await trx
      .updateTable("accounts")
      .set({ ...change, version: row.version + 1, updated_at: now })
      .where("id", "=", action.accountId)
      .where("version", "=", row.version)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) return { action, status: "stale", fromStatus: row.status };
    expected.set(action.accountId, row.version + 1);
    const toStatus = (change.status as AccountStatus | undefined) ?? row.status;
    if (!unrecorded.has(action.type)) {
      const {
        type,
        accountId,
        expectedVersion: _ev,
        ...rest
      } = action as AccountAction & { reason?: string };
      const { reason, ...details } = rest as { reason?: string };
      await trx
        .insertInto("account_events")
        .values({
          at: now,
          account_id: accountId,
          action: type,
          from_status: row.status,
          to_status: toStatus,
          reason: reason ?? null,
          source: ctx.source,
          plugin,
          request_id: ctx.requestId ?? null,
          details: Object.keys(details).length > 0 ? JSON.stringify(details) : null,
        })
        .execute();
    }
    return { action, status: "applied", fromStatus: row.status, toStatus };
  }
}
