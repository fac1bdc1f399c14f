/**
 * The accounts repository: the one writer of identity, token and usage-snapshot columns. Status
 * changes go through the action applier, except a (re-)login or import, which by definition makes
 * the identity usable again: it sets `active` and writes an `account.login`/`account.import` event.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { systemClock } from "../core/clock.ts";
import type { AccountStatus, EpochMs } from "../core/types.ts";
import type { StoredCredentials, TokenSet, UsageRecord } from "../plugin-host/api.ts";
import { type AuditOf, auditIn, inTransaction } from "../store/audit.ts";
import type { AccountRow, Database } from "../store/schema.ts";
import { type Identity, identityFromTokens, localAccountId, tokenExpiry } from "./claims.ts";
import type { TokenCipher } from "./crypto.ts";

/** Synthetic local ids are never sent upstream as `chatgpt-account-id`. */
export function realChatgptAccountId(id: string | null): string | null {
  return id && !id.startsWith("email_") && !id.startsWith("local_") ? id : null;
}

/**
 * What an account write changed: a usage reading; tokens and identity (a login, an import, a token
 * save); or the account was removed, with its sticky bindings (a delete).
 */
export type AccountChange = "usage" | "tokens" | "removed";

/** The outcome of a login or import. */
export interface UpsertResult {
  readonly id: string;
  readonly email: string | null;
  readonly planType: string | null;
  readonly status: AccountStatus;
  /** True when a new row was created; false when an existing identity was updated in place. */
  readonly created: boolean;
}

/** How long usage snapshots are kept. */
const USAGE_RETENTION_MS = 8 * 24 * 3600_000;

/** Accounts in the store; the one writer of token, identity and usage-snapshot columns. */
/**
 * The row an identity already has: same workspace and seat, else same workspace and email, else
 * the id. One rule for a re-login, an import and the Python import.
 */
export async function findAccountByIdentity(
  db: Kysely<Database>,
  identity: Pick<Identity, "chatgptAccountId" | "chatgptUserId" | "email">,
  id: string,
): Promise<AccountRow | undefined> {
  const { chatgptAccountId: acct, chatgptUserId: user, email } = identity;
  if (acct && user) {
    const row = await db
      .selectFrom("accounts")
      .selectAll()
      .where("chatgpt_account_id", "=", acct)
      .where("chatgpt_user_id", "=", user)
      .executeTakeFirst();
    if (row) return row;
  }
  if (acct && email) {
    const row = await db
      .selectFrom("accounts")
      .selectAll()
      .where("chatgpt_account_id", "=", acct)
      .where("email", "=", email)
      .executeTakeFirst();
    if (row) return row;
  }
  return db.selectFrom("accounts").selectAll().where("id", "=", id).executeTakeFirst();
}

export class AccountRepository {
  readonly #listeners: ((kind: AccountChange) => void)[] = [];
  /**
   * Decrypted credentials, so a proxied request neither reads the store nor decrypts. Coherent
   * because this repository is the only writer of tokens: every token write drops the entry.
   */
  readonly #credentials = new Map<string, StoredCredentials>();
  #generation = 0;

  constructor(
    readonly db: Kysely<Database>,
    private readonly cipher: TokenCipher,
    private readonly clock: () => EpochMs = systemClock.now,
  ) {}

  /**
   * Called after every write that changes what an account snapshot shows: a usage reading
   * (`usage`), tokens and identity (`tokens`: login, import, refresh), or an
   * account's deletion (`removed`; a delete that found no account changed nothing and says nothing).
   */
  onChange(fn: (kind: AccountChange) => void): void {
    this.#listeners.push(fn);
  }

  #changed(kind: AccountChange = "tokens"): void {
    for (const fn of this.#listeners) fn(kind);
  }

  /** Forgets cached credentials (all, or one account's): another replica changed them. */
  forgetCredentials(id?: string): void {
    this.#dropCredentials(id);
  }

  /** Forgets cached credentials (of one account, or all) before a token write. */
  #dropCredentials(id?: string): void {
    this.#generation++;
    if (id === undefined) this.#credentials.clear();
    else this.#credentials.delete(id);
  }

  /**
   * Creates the account of these tokens or, for an identity already stored, replaces its tokens
   * in place and makes it active again (a re-login is the fix for `reauth_required`).
   */
  async upsertFromTokens(
    tokens: TokenSet & { readonly accountId?: string | null },
    opts: {
      source: "login" | "import";
      lastRefreshAt?: EpochMs | null;
      requestId?: string | null;
      /** The audit row, written in the same transaction. */
      audit?: AuditOf<UpsertResult>;
    },
  ): Promise<UpsertResult> {
    const now = this.clock();
    const identity = identityFromTokens(tokens.idToken, tokens.accessToken, tokens.accountId);
    const newId = await localAccountId(identity);
    const enc = {
      access_token_enc: await this.cipher.encrypt(tokens.accessToken),
      refresh_token_enc: await this.cipher.encrypt(tokens.refreshToken),
      id_token_enc: await this.cipher.encrypt(tokens.idToken),
      access_token_expires_at: tokenExpiry(tokens.accessToken),
      last_refresh_at: opts.lastRefreshAt ?? now,
    };
    const action = opts.source === "login" ? "account.login" : "account.import";
    this.#dropCredentials();
    const out = await this.db.transaction().execute(async (trx) => {
      const existing = await findAccountByIdentity(trx, identity, newId);
      if (existing) {
        await trx
          .updateTable("accounts")
          .set({
            ...enc,
            email: identity.email ?? existing.email,
            chatgpt_account_id: identity.chatgptAccountId ?? existing.chatgpt_account_id,
            chatgpt_user_id: identity.chatgptUserId ?? existing.chatgpt_user_id,
            plan_type: identity.planType ?? existing.plan_type,
            status: "active",
            status_reason: null,
            reset_at: null,
            blocked_at: null,
            cooldown_until: null,
            failure_streak: 0,
            version: existing.version + 1,
            updated_at: now,
          })
          .where("id", "=", existing.id)
          .execute();
      } else {
        await trx
          .insertInto("accounts")
          .values({
            id: newId,
            ...enc,
            email: identity.email,
            chatgpt_account_id: identity.chatgptAccountId,
            chatgpt_user_id: identity.chatgptUserId,
            plan_type: identity.planType,
            codex_installation_id: crypto.randomUUID(),
            status: "active",
            created_at: now,
            updated_at: now,
          })
          .execute();
      }
      const id = existing?.id ?? newId;
      await trx
        .insertInto("account_events")
        .values({
          at: now,
          account_id: id,
          action,
          from_status: existing?.status ?? null,
          to_status: "active",
          reason: existing ? "Tokens replaced by a new login" : "Account added",
          source: opts.source,
          plugin: null,
          request_id: opts.requestId ?? null,
          details: null,
        })
        .execute();
      const result: UpsertResult = {
        id,
        email: identity.email ?? existing?.email ?? null,
        planType: identity.planType ?? existing?.plan_type ?? null,
        status: "active" as const,
        created: !existing,
      };
      await auditIn(trx, opts.audit, result);
      return result;
    });
    this.#changed();
    return out;
  }

  /** Forgets every cached credential and tells listeners: accounts were written behind our back (an import). */
  invalidate(): void {
    this.#dropCredentials();
    this.#changed();
  }

  /**
   * Decrypted tokens of one account, or null when it does not exist or holds no tokens. `fresh`
   * skips the cache: another replica on the same database may have written them.
   */
  async credentials(id: string, options: { fresh?: boolean } = {}): Promise<StoredCredentials | null> {
    const cached = options.fresh ? undefined : this.#credentials.get(id);
    if (cached) return cached;
    // A write that lands while we decrypt makes this read stale: keep it for this caller only.
    const generation = this.#generation;
    const loaded = await this.#loadCredentials(id);
    if (loaded && generation === this.#generation) this.#credentials.set(id, loaded);
    return loaded;
  }

  async #loadCredentials(id: string): Promise<StoredCredentials | null> {
    const row = await this.db
      .selectFrom("accounts")
      .select([
        "id",
        "access_token_enc",
        "refresh_token_enc",
        "id_token_enc",
        "access_token_expires_at",
        "last_refresh_at",
        "chatgpt_account_id",
        "codex_installation_id",
      ])
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row?.access_token_enc || !row.refresh_token_enc) return null;
    return {
      accountId: row.id,
      accessToken: await this.cipher.decrypt(row.access_token_enc),
      refreshToken: await this.cipher.decrypt(row.refresh_token_enc),
      idToken: row.id_token_enc ? await this.cipher.decrypt(row.id_token_enc) : "",
      accessTokenExpiresAt: row.access_token_expires_at === null ? null : Number(row.access_token_expires_at),
      lastRefreshAt: row.last_refresh_at === null ? null : Number(row.last_refresh_at),
      chatgptAccountId: realChatgptAccountId(row.chatgpt_account_id),
      installationId: row.codex_installation_id,
    };
  }

  /** Stores refreshed tokens; see `GatewayServices.accounts.saveTokens`. */
  async saveTokens(
    id: string,
    tokens: TokenSet,
    options: { replacing?: string } = {},
  ): Promise<"saved" | "stale" | "missing"> {
    const identity = identityFromTokens(tokens.idToken, tokens.accessToken);
    const enc = {
      access_token_enc: await this.cipher.encrypt(tokens.accessToken),
      refresh_token_enc: await this.cipher.encrypt(tokens.refreshToken),
      id_token_enc: await this.cipher.encrypt(tokens.idToken),
    };
    const now = this.clock();
    this.#dropCredentials(id);
    const result = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom("accounts")
        .select(["refresh_token_enc", "email", "plan_type", "chatgpt_account_id", "chatgpt_user_id"])
        .where("id", "=", id)
        .executeTakeFirst();
      if (!row) return "missing";
      if (options.replacing !== undefined) {
        const current = row.refresh_token_enc ? await this.cipher.decrypt(row.refresh_token_enc) : null;
        if (current !== options.replacing) return "stale";
      }
      await trx
        .updateTable("accounts")
        .set({
          ...enc,
          access_token_expires_at: tokenExpiry(tokens.accessToken),
          last_refresh_at: now,
          email: identity.email ?? row.email,
          plan_type: identity.planType ?? row.plan_type,
          chatgpt_account_id: row.chatgpt_account_id ?? identity.chatgptAccountId,
          chatgpt_user_id: row.chatgpt_user_id ?? identity.chatgptUserId,
          updated_at: now,
        })
        .where("id", "=", id)
        .execute();
      return "saved";
    });
    this.#dropCredentials(id);
    if (result === "saved") this.#changed();
    return result;
  }

  /** Stores one usage reading: a row per window, with the credits; prunes old rows of the account. */
  async recordUsage(id: string, usage: UsageRecord): Promise<void> {
    const now = this.clock();
    const credits = {
      credits_has: usage.credits ? (usage.credits.hasCredits ? 1 : 0) : null,
      credits_unlimited: usage.credits ? (usage.credits.unlimited ? 1 : 0) : null,
      credits_balance: usage.credits?.balance ?? null,
    };
    const rows = (["primary", "secondary"] as const).flatMap((window) => {
      const w = usage[window];
      return w
        ? [
            {
              account_id: id,
              recorded_at: now,
              window,
              used_percent: w.usedPercent,
              window_minutes: w.windowMinutes,
              reset_at: w.resetAt,
              ...credits,
            },
          ]
        : [];
    });
    if (rows.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      // A live reading (response headers) often has no reset time: keep the one last seen for the
      // same window while it is still ahead, so `resetAt` does not vanish after traffic.
      for (const row of rows) {
        if (row.reset_at !== null) continue;
        const prev = await trx
          .selectFrom("usage_snapshots")
          .select(["reset_at", "window_minutes"])
          .where("account_id", "=", id)
          .where("window", "=", row.window)
          .orderBy("id", "desc")
          .limit(1)
          .executeTakeFirst();
        const prevReset = prev?.reset_at === null || prev === undefined ? null : Number(prev.reset_at);
        const sameWindow =
          row.window_minutes === null ||
          prev?.window_minutes === null ||
          prev?.window_minutes === row.window_minutes;
        if (prevReset !== null && prevReset > now && sameWindow) row.reset_at = prevReset;
      }
      await trx.insertInto("usage_snapshots").values(rows).execute();
      await trx
        .deleteFrom("usage_snapshots")
        .where("account_id", "=", id)
        .where("recorded_at", "<", now - USAGE_RETENTION_MS)
        .execute();
    });
    this.#changed("usage");
  }

  /** Deletes an account with its events, snapshots and sticky sessions; false when unknown. */
  async delete(id: string, audit?: AuditOf<string>): Promise<boolean> {
    const deleted = await inTransaction(this.db, async (trx) => {
      const r = await trx.deleteFrom("accounts").where("id", "=", id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await auditIn(trx, audit, id);
      return true;
    });
    this.#dropCredentials(id);
    if (deleted) this.#changed("removed");
    return deleted;
  }
}
