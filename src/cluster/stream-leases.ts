/**
 * The per-account stream cap across replicas. The balancing plugin's lease pool counts streams in
 * its own process; with several replicas on one PostgreSQL database the core wraps it so that a
 * stream also needs a row in `stream_leases`, taken only while fewer than the cap are live for the
 * account (under a transaction-scoped advisory lock on the account, in one call of the
 * `codex_lb_take_stream` function: one round trip). Each row has a short expiry
 * that its replica renews for all its streams at once every few seconds, so the streams of a
 * replica that died (`kill -9`) free their slots within {@link STREAM_LEASE_MS}.
 *
 * @module
 */
import { type Kysely, sql } from "kysely";
import { type Clock, sleep, type TimerHandle } from "../core/clock.ts";
import { GatewayError } from "../core/errors.ts";
import type { AccountLeases, Lease } from "../plugin-host/api.ts";
import type { Database } from "../store/schema.ts";

export const STREAM_LEASE_MS = 10_000;
const RENEW_MS = 3_000;
/** How often a request waiting for a global slot tries again. */
const RETRY_MS = 50;

export class GlobalStreamLeases {
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly replicaId: string,
    private readonly time: Clock,
  ) {}

  /** Takes one of `cap` slots of `accountId`; its id, or null when all are taken. One round trip. */
  async tryAcquire(accountId: string, cap: number): Promise<string | null> {
    const id = crypto.randomUUID();
    const now = this.time.now();
    const { rows } = await sql<{
      ok: boolean;
    }>`select codex_lb_take_stream(${id}, ${accountId}, ${this.replicaId},
      ${now}, ${now + STREAM_LEASE_MS}, ${cap}) as ok`.execute(this.db);
    return rows[0]?.ok ? id : null;
  }

  async release(id: string): Promise<void> {
    await this.db.deleteFrom("stream_leases").where("id", "=", id).execute();
  }

  /** Renews this replica's rows every few seconds and clears lapsed ones. */
  start(): void {
    const loop = () => {
      this.#timer = this.time.setTimeout(() => {
        const now = this.time.now();
        void (async () => {
          try {
            await this.db
              .updateTable("stream_leases")
              .set({ expires_at: now + STREAM_LEASE_MS })
              .where("replica_id", "=", this.replicaId)
              .execute();
            await this.db.deleteFrom("stream_leases").where("expires_at", "<=", now).execute();
          } catch {
            // The next renewal tries again; rows lapse by themselves if this replica is gone.
          }
        })().finally(() => {
          if (!this.#stopped) loop();
        });
      }, RENEW_MS);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.time.clearTimeout(this.#timer);
    await this.db
      .deleteFrom("stream_leases")
      .where("replica_id", "=", this.replicaId)
      .execute()
      .catch(() => {});
  }

  /**
   * The plugin's lease pool with the global cap on top: the local slot first (its queue and
   * abort handling), then a global one, tried until the request's queue budget is over (one
   * budget per request: time waited on other accounts and for the local slot counts). A probe
   * (an account back from a backoff) gets a global cap of one.
   */
  wrap(inner: AccountLeases, cap: () => number, queueWaitMs: () => number): AccountLeases {
    return {
      inFlight: (accountId) => inner.inFlight(accountId),
      ...(inner.queued ? { queued: (accountId: string) => inner.queued?.(accountId) ?? 0 } : {}),
      acquire: async (accountId, options = {}) => {
        const started = this.time.now();
        const local = await inner.acquire(accountId, options);
        const { signal } = options;
        const waitMs = queueWaitMs();
        const leftMs = waitMs - (options.waitedMs ?? 0) - (this.time.now() - started);
        const tries = Math.max(0, Math.ceil(leftMs / RETRY_MS));
        const limit = options.probe ? 1 : cap();
        try {
          for (let i = 0; ; i++) {
            if (signal?.aborted)
              throw signal.reason ?? new DOMException("The request was aborted", "AbortError");
            const id = await this.tryAcquire(accountId, limit);
            if (id !== null) return this.#lease(local, id, signal);
            if (i >= tries) break;
            await sleep(RETRY_MS, this.time);
          }
        } catch (e) {
          local.release();
          throw e;
        }
        local.release();
        throw new GatewayError(
          "proxy_overloaded",
          `Every eligible account is at its limit of ${cap()} concurrent streams across replicas (waited ${waitMs} ms); retry shortly`,
          {},
          { "retry-after": String(Math.max(1, Math.ceil(waitMs / 1000))) },
        );
      },
    };
  }

  #lease(local: Lease, id: string, signal: AbortSignal | undefined): Lease {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      signal?.removeEventListener("abort", release);
      local.release();
      this.release(id).catch(() => {});
    };
    signal?.addEventListener("abort", release, { once: true });
    return { accountId: local.accountId, release };
  }
}
