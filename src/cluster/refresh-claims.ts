/**
 * One token refresh per account across replicas. Refresh tokens are single-use: two replicas
 * refreshing the same account both send it, and the second gets `refresh_token_reused`. Before a
 * refresh, a replica claims it in the database: a lease row per account with an expiry, taken by
 * compare-and-set only when there is none, it lapsed, or it was for another token generation (a
 * hash of the refresh token). The others wait and read the new tokens; a failed refresh leaves its
 * outcome on the row for a few seconds, so they report it instead of re-sending a used token.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { RefreshClaim, RefreshFailureRecord } from "../plugin-host/api.ts";
import type { Database } from "../store/schema.ts";

export type { RefreshClaim, RefreshFailureRecord } from "../plugin-host/api.ts";

/** Hash of a refresh token: its generation, stored instead of the token. */
export async function tokenGeneration(refreshToken: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(refreshToken));
  return Array.from(new Uint8Array(digest).subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class RefreshClaims {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly replicaId: string,
    private readonly clock: () => number,
  ) {}

  /** Claims the refresh of `accountId`'s `refreshToken` for `ttlMs`. */
  async claim(accountId: string, refreshToken: string, ttlMs: number): Promise<RefreshClaim> {
    const now = this.clock();
    const hash = await tokenGeneration(refreshToken);
    const holder = `${this.replicaId}:${crypto.randomUUID()}`;
    await this.db
      .insertInto("refresh_claims")
      .values({ account_id: accountId, token_hash: hash, holder, expires_at: now + ttlMs, failure: null })
      .onConflict((oc) =>
        oc
          .column("account_id")
          .doUpdateSet((eb) => ({
            token_hash: eb.ref("excluded.token_hash"),
            holder: eb.ref("excluded.holder"),
            expires_at: eb.ref("excluded.expires_at"),
            failure: null,
          }))
          .where((eb) =>
            eb.or([
              eb("refresh_claims.expires_at", "<=", now),
              eb("refresh_claims.token_hash", "<>", eb.ref("excluded.token_hash")),
            ]),
          ),
      )
      .execute();
    const row = await this.db
      .selectFrom("refresh_claims")
      .selectAll()
      .where("account_id", "=", accountId)
      .executeTakeFirst();
    if (!row) return { status: "busy" }; // the account was deleted meanwhile; the caller re-reads it
    if (row.holder === holder) {
      return {
        status: "claimed",
        done: async (failure, reuseMs = 0) => {
          if (failure && reuseMs > 0) {
            await this.db
              .updateTable("refresh_claims")
              .set({ failure: JSON.stringify(failure), expires_at: this.clock() + reuseMs })
              .where("account_id", "=", accountId)
              .where("holder", "=", holder)
              .execute();
          } else {
            await this.db
              .deleteFrom("refresh_claims")
              .where("account_id", "=", accountId)
              .where("holder", "=", holder)
              .execute();
          }
        },
      };
    }
    if (row.failure !== null && row.token_hash === hash && row.expires_at > now) {
      try {
        return { status: "failed", failure: JSON.parse(row.failure) as RefreshFailureRecord };
      } catch {
        return { status: "busy" };
      }
    }
    return { status: "busy" };
  }
}
