/**
 * The credential attempt limiter shared by replicas on one PostgreSQL database: the same rule as
 * the in-memory one (src/access/admin-auth/attempts.ts: counted before the credential is checked,
 * refunded when it proves right, at most MAX_FAILURES per address in the window), with the counts
 * in `login_attempts`, so a guesser spreading attempts over the replicas gets no more tries.
 *
 * @module
 */
import { type Kysely, sql } from "kysely";
import { type Attempt, type AttemptCounter, MAX_FAILURES, WINDOW_MS } from "../access/admin-auth/attempts.ts";
import { GatewayError } from "../core/errors.ts";
import type { Database } from "../store/schema.ts";

export class StoreAttemptLimiter implements AttemptCounter {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly max = MAX_FAILURES,
    private readonly windowMs = WINDOW_MS,
  ) {}

  async begin(address: string | null, now: number): Promise<Attempt> {
    const key = address ?? "unknown";
    const id = crypto.randomUUID();
    const { rows } = await sql<{ oldest: number | null }>`select codex_lb_begin_attempt(${id}, ${key}, ${now},
      ${this.windowMs}, ${this.max}) as oldest`.execute(this.db);
    const oldest = rows[0]?.oldest ?? null;
    if (oldest !== null) {
      const seconds = Math.max(1, Math.ceil((Number(oldest) + this.windowMs - now) / 1000));
      throw new GatewayError(
        "too_many_attempts",
        `Too many failed attempts from this address; try again in ${seconds} seconds`,
        {},
        { "retry-after": String(seconds) },
      );
    }
    let done = false;
    return {
      succeeded: () => {
        if (done) return;
        done = true;
        this.db
          .deleteFrom("login_attempts")
          .where("id", "=", id)
          .execute()
          .catch(() => {});
      },
    };
  }
}
