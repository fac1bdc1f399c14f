/**
 * Sticky session bindings: an affinity key (turn state, session id, thread id, prompt cache key)
 * mapped to the account that served it, with a sliding expiry. This is core state; plugins read
 * and write it only through the `sticky` service (`GatewayServices.sticky`), never the table.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { EpochMs } from "../core/types.ts";
import { type AuditOf, auditIn, inTransaction } from "../store/audit.ts";
import type { Database } from "../store/schema.ts";

/** Where a key came from, in the order the balancer looks for one. */
export const stickyKinds = ["turn_state", "session", "thread", "prompt_cache"] as const;
export type StickyKind = (typeof stickyKinds)[number];

/** One binding as the store holds it. */
export interface StickyBinding {
  readonly key: string;
  readonly kind: StickyKind;
  readonly accountId: string;
  readonly createdAt: EpochMs;
  readonly updatedAt: EpochMs;
  readonly expiresAt: EpochMs;
}

type Row = Database["sticky_sessions"];

function toBinding(r: {
  key: string;
  kind: string;
  account_id: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
}): StickyBinding {
  return {
    key: r.key,
    kind: r.kind as StickyKind,
    accountId: r.account_id,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    expiresAt: Number(r.expires_at),
  };
}

/**
 * A refresh of a binding's expiry is skipped when the row was refreshed this recently (or within
 * 1 % of the TTL, if that is shorter): a busy conversation would otherwise write on every turn.
 */
export const TOUCH_MIN_INTERVAL_MS = 15_000;

/** How recently a binding must have been refreshed for a touch to write nothing, at a TTL of `ttlMs`. */
export function touchMinIntervalMs(ttlMs: number): number {
  return Math.min(TOUCH_MIN_INTERVAL_MS, Math.floor(ttlMs / 100));
}

/** Repository over `sticky_sessions`. Every method takes `now` so callers decide the clock. */
export class StickyStore {
  readonly #listeners: ((key: string | null) => void)[] = [];

  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Runs `fn` after each write that binds, moves or removes a binding (`key`), and with null after
   * `invalidate()`; not after a touch or the sweep of expired bindings. (Caches follow it.)
   */
  onChanged(fn: (key: string | null) => void): void {
    this.#listeners.push(fn);
  }

  #changed(key: string | null): void {
    for (const fn of this.#listeners) fn(key);
  }

  /** Tells the listeners that any binding may have changed (the table was written elsewhere, e.g. by an import). */
  invalidate(): void {
    this.#changed(null);
  }

  /** The live binding of `key`, or null (an expired row counts as missing and is removed). */
  async get(key: string, now: EpochMs): Promise<StickyBinding | null> {
    const row = await this.db
      .selectFrom("sticky_sessions")
      .selectAll()
      .where("key", "=", key)
      .executeTakeFirst();
    if (!row) return null;
    if (Number(row.expires_at) <= now) {
      await this.db
        .deleteFrom("sticky_sessions")
        .where("key", "=", key)
        .where("expires_at", "<=", now)
        .execute();
      return null;
    }
    return toBinding(row);
  }

  /** Binds `key` to `accountId` (insert or move), expiring `ttlMs` after `now`. */
  async bind(key: string, kind: StickyKind, accountId: string, now: EpochMs, ttlMs: number): Promise<void> {
    const row: Row = {
      key,
      kind,
      account_id: accountId,
      created_at: now,
      updated_at: now,
      expires_at: now + ttlMs,
    };
    await this.db
      .insertInto("sticky_sessions")
      .values(row)
      .onConflict((oc) =>
        oc.column("key").doUpdateSet({
          kind,
          account_id: accountId,
          // A key that moves to another account starts a new binding; one that stays keeps its age.
          created_at: (eb) =>
            eb
              .case()
              .when("sticky_sessions.account_id", "=", accountId)
              .then(eb.ref("sticky_sessions.created_at"))
              .else(now)
              .end(),
          updated_at: now,
          expires_at: now + ttlMs,
        }),
      )
      .execute();
    this.#changed(key);
  }

  /**
   * Compare-and-set bind: binds only if the key's live binding is still `expected` (an account id,
   * or null for "none"), as the decision saw it; `undefined` binds unconditionally. Returns false
   * when someone else bound the key meanwhile (nothing written).
   */
  async bindIf(
    key: string,
    kind: StickyKind,
    accountId: string,
    expected: string | null | undefined,
    now: EpochMs,
    ttlMs: number,
  ): Promise<boolean> {
    if (expected === undefined) {
      await this.bind(key, kind, accountId, now, ttlMs);
      return true;
    }
    const bound = await this.db.transaction().execute(async (trx) => {
      const store = new StickyStore(trx);
      const current = await store.get(key, now);
      if ((current?.accountId ?? null) !== expected) return false;
      await store.bind(key, kind, accountId, now, ttlMs);
      return true;
    });
    if (bound) this.#changed(key);
    return bound;
  }

  /** Removes a binding only while it is bound to `expected` (any account when undefined). */
  async deleteIf(key: string, expected: string | undefined): Promise<boolean> {
    let q = this.db.deleteFrom("sticky_sessions").where("key", "=", key);
    if (expected !== undefined) q = q.where("account_id", "=", expected);
    const res = await q.executeTakeFirst();
    const deleted = Number(res.numDeletedRows) > 0;
    if (deleted) this.#changed(key);
    return deleted;
  }

  /**
   * Slides the expiry of a binding that was just used. Returns false when nothing was written
   * (the row is gone, or was refreshed less than the minimum interval ago).
   */
  async touch(key: string, now: EpochMs, ttlMs: number, accountId?: string): Promise<boolean> {
    const minInterval = touchMinIntervalMs(ttlMs);
    let q = this.db
      .updateTable("sticky_sessions")
      .set({ updated_at: now, expires_at: now + ttlMs })
      .where("key", "=", key);
    if (accountId !== undefined) q = q.where("account_id", "=", accountId);
    const res = await q
      .where("expires_at", ">", now)
      .where("updated_at", "<=", now - minInterval)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Removes one binding; true when it existed. */
  async delete(key: string, audit?: AuditOf<string>): Promise<boolean> {
    const deleted = await inTransaction(this.db, async (trx) => {
      const res = await trx.deleteFrom("sticky_sessions").where("key", "=", key).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) return false;
      await auditIn(trx, audit, key);
      return true;
    });
    if (deleted) this.#changed(key);
    return deleted;
  }

  /** Live bindings, newest use first, optionally of one account or kind. */
  async list(
    now: EpochMs,
    filter: { accountId?: string; kind?: StickyKind; limit?: number; offset?: number } = {},
  ): Promise<StickyBinding[]> {
    let q = this.#live(now, filter).selectAll().orderBy("updated_at", "desc").orderBy("key");
    if (filter.limit) q = q.limit(filter.limit);
    if (filter.offset) q = q.offset(filter.offset);
    return (await q.execute()).map(toBinding);
  }

  /** How many live bindings match (for paging). */
  async count(now: EpochMs, filter: { accountId?: string; kind?: StickyKind } = {}): Promise<number> {
    const row = await this.#live(now, filter)
      .select((e) => e.fn.countAll<number>().as("n"))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  #live(now: EpochMs, filter: { accountId?: string; kind?: StickyKind }) {
    let q = this.db.selectFrom("sticky_sessions").where("expires_at", ">", now);
    if (filter.accountId) q = q.where("account_id", "=", filter.accountId);
    if (filter.kind) q = q.where("kind", "=", filter.kind);
    return q;
  }

  /** Deletes every binding expired at `now`; returns how many. */
  async expire(now: EpochMs): Promise<number> {
    const res = await this.db.deleteFrom("sticky_sessions").where("expires_at", "<=", now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
