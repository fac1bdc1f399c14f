/**
 * Writes an import plan into our store in one transaction, sealing every secret with our key.
 * A second import of the same install updates what the first created (accounts matched by
 * workspace + seat, then workspace + email, then our id for that identity; API keys by hash, then
 * id) instead of adding copies. Tokens this gateway refreshed since (newer `last_refresh_at`) are
 * kept: the Python store's would be stale (refresh tokens rotate).
 *
 * @module
 */
import type { Kysely } from "kysely";
import { sealSecret } from "../access/admin-auth/service.ts";
import { localAccountId, tokenExpiry } from "../accounts/claims.ts";
import type { TokenCipher } from "../accounts/crypto.ts";
import { findAccountByIdentity } from "../accounts/repository.ts";
import { RUNTIME_SETTINGS_KEY } from "../runtime-settings/store.ts";
import type { Database } from "../store/schema.ts";
import { importHistory } from "./history.ts";
import type { ImportPlan, Skipped } from "./plan.ts";

/** Per kind: how many rows were (or, in a dry run, would be) created and updated. */
export interface ImportCounts {
  readonly accounts: { created: number; updated: number };
  readonly apiKeys: { created: number; updated: number };
  readonly limits: { imported: number };
  readonly firewall: { created: number; existing: number };
  readonly stickySessions: { created: number; updated: number };
  readonly settings: { imported: string[] };
  readonly admin: { password: boolean; totp: boolean };
  /** Request-log rows copied (`--with-history`); null when history was not asked for. */
  history: { imported: number; skipped: number } | null;
}

/** Thrown inside the transaction of a dry run so that it rolls back. */
class DryRun extends Error {}

type Db = Kysely<Database>;

/**
 * Applies `plan` (all or nothing). With `dryRun` every statement runs and is rolled back, so the
 * counts say exactly what a real run would do. `skipped` receives what is left out while writing.
 */
export async function applyPlan(
  db: Db,
  cipher: TokenCipher,
  plan: ImportPlan,
  opts: {
    now: number;
    dryRun: boolean;
    skipped: Skipped[];
    notes: string[];
    /** Also copy the request logs of the store at this path. */
    historyFrom?: string | undefined;
  },
): Promise<ImportCounts> {
  const { now } = opts;
  // Seal everything before the transaction: it then holds the write lock only for the writes.
  const sealed = await Promise.all(
    plan.accounts.map(async (a) => ({
      a,
      ourId: await localAccountId({
        email: a.email,
        chatgptAccountId: a.chatgptAccountId,
        chatgptUserId: a.chatgptUserId,
        planType: a.planType,
      }),
      access_token_enc: await cipher.encrypt(a.accessToken),
      refresh_token_enc: await cipher.encrypt(a.refreshToken),
      id_token_enc: await cipher.encrypt(a.idToken),
    })),
  );
  const totpSealed = plan.admin.totpSecret ? await sealSecret(cipher, plan.admin.totpSecret) : null;
  const counts: ImportCounts = {
    accounts: { created: 0, updated: 0 },
    apiKeys: { created: 0, updated: 0 },
    limits: { imported: 0 },
    firewall: { created: 0, existing: 0 },
    stickySessions: { created: 0, updated: 0 },
    settings: { imported: [] },
    admin: { password: false, totp: false },
    history: null,
  };
  const notes: string[] = [];
  const skipped: Skipped[] = [];
  try {
    await db.transaction().execute(async (trx) => {
      // ------------------------------------------------------------ accounts
      const ourIdOf = new Map<string, string>();
      for (const s of sealed) {
        const { a } = s;
        const existing = await findAccountByIdentity(trx, a, s.ourId);
        const identity = {
          chatgpt_account_id: a.chatgptAccountId,
          chatgpt_user_id: a.chatgptUserId,
          email: a.email,
          alias: a.alias,
          plan_type: a.planType,
          routing_policy: a.routingPolicy,
        };
        const theirs = {
          access_token_enc: s.access_token_enc,
          refresh_token_enc: s.refresh_token_enc,
          id_token_enc: s.id_token_enc,
          access_token_expires_at: tokenExpiry(a.accessToken),
          last_refresh_at: a.lastRefreshAt,
          status: a.status,
          status_reason: a.statusReason,
          reset_at: a.resetAt,
          blocked_at: a.blockedAt,
          cooldown_until: null,
          failure_streak: 0,
        };
        let id: string;
        let fromStatus: string | null = null;
        let toStatus: string = a.status;
        if (existing) {
          id = existing.id;
          fromStatus = existing.status;
          const oursNewer =
            existing.last_refresh_at !== null &&
            existing.refresh_token_enc !== null &&
            (a.lastRefreshAt === null || Number(existing.last_refresh_at) > a.lastRefreshAt);
          if (oursNewer) toStatus = existing.status;
          if (oursNewer)
            notes.push(
              `account ${a.pythonId}: kept the tokens and status codex-lb refreshed since the last import (newer than the Python store's)`,
            );
          await trx
            .updateTable("accounts")
            .set({
              ...identity,
              ...(oursNewer ? {} : theirs),
              version: existing.version + 1,
              updated_at: now,
            })
            .where("id", "=", existing.id)
            .execute();
          counts.accounts.updated++;
        } else {
          id = s.ourId;
          await trx
            .insertInto("accounts")
            .values({
              id,
              ...identity,
              ...theirs,
              codex_installation_id: a.installationId ?? crypto.randomUUID(),
              created_at: a.createdAt ?? now,
              updated_at: now,
            })
            .execute();
          counts.accounts.created++;
        }
        ourIdOf.set(a.pythonId, id);
        await trx
          .insertInto("account_events")
          .values({
            at: now,
            account_id: id,
            action: "account.import",
            from_status: fromStatus,
            to_status: toStatus,
            reason: `Imported from the Python codex-lb (its id ${a.pythonId})`,
            source: "import-python",
            plugin: null,
            request_id: null,
            details: null,
          })
          .execute();
      }

      // ------------------------------------------------------------ API keys and their limits
      const keyIdOf = new Map<string, string>();
      for (const k of plan.apiKeys) {
        const byHash = await trx
          .selectFrom("api_keys")
          .select("id")
          .where("key_hash", "=", k.keyHash)
          .executeTakeFirst();
        const byId = byHash
          ? undefined
          : await trx.selectFrom("api_keys").select("id").where("id", "=", k.pythonId).executeTakeFirst();
        const values = {
          name: k.name,
          key_hash: k.keyHash,
          key_prefix: k.keyPrefix,
          is_active: k.isActive ? 1 : 0,
          expires_at: k.expiresAt,
          allowed_models: k.allowedModels ? JSON.stringify(k.allowedModels) : null,
          updated_at: now,
        };
        let id: string;
        if (byHash) {
          id = byHash.id;
          await trx.updateTable("api_keys").set(values).where("id", "=", id).execute();
          counts.apiKeys.updated++;
        } else {
          // Same id as in the Python store when it is free (request logs imported later match it).
          id = byId ? crypto.randomUUID() : k.pythonId;
          await trx
            .insertInto("api_keys")
            .values({ id, ...values, created_at: k.createdAt, last_used_at: k.lastUsedAt })
            .execute();
          counts.apiKeys.created++;
        }
        keyIdOf.set(k.pythonId, id);
        await trx.deleteFrom("api_key_limits").where("api_key_id", "=", id).execute();
        if (k.limits.length > 0) {
          await trx
            .insertInto("api_key_limits")
            .values(
              k.limits.map((l) => ({
                api_key_id: id,
                limit_type: l.limitType,
                limit_window: l.limitWindow,
                max_value: l.maxValue,
              })),
            )
            .execute();
          counts.limits.imported += k.limits.length;
        }
      }

      // ------------------------------------------------------------ firewall
      for (const entry of plan.firewall) {
        const res = await trx
          .insertInto("firewall_allowlist")
          .values({ entry, created_at: now })
          .onConflict((oc) => oc.column("entry").doNothing())
          .executeTakeFirst();
        if (Number(res.numInsertedOrUpdatedRows ?? 0n) > 0) counts.firewall.created++;
        else counts.firewall.existing++;
      }

      // ------------------------------------------------------------ sticky sessions
      for (const st of plan.sticky) {
        const accountId = ourIdOf.get(st.pythonAccountId);
        if (!accountId) {
          skipped.push({ kind: "sticky_session", item: st.key, reason: "its account was not imported" });
          continue;
        }
        const had = await trx
          .selectFrom("sticky_sessions")
          .select("key")
          .where("key", "=", st.key)
          .executeTakeFirst();
        await trx
          .insertInto("sticky_sessions")
          .values({
            key: st.key,
            kind: st.kind,
            account_id: accountId,
            created_at: st.createdAt,
            updated_at: st.updatedAt,
            expires_at: st.expiresAt,
          })
          .onConflict((oc) =>
            oc.column("key").doUpdateSet({
              kind: st.kind,
              account_id: accountId,
              updated_at: st.updatedAt,
              expires_at: st.expiresAt,
            }),
          )
          .execute();
        if (had) counts.stickySessions.updated++;
        else counts.stickySessions.created++;
      }

      // ------------------------------------------------------------ runtime settings (one document)
      const entries = Object.entries(plan.settings).filter(([, v]) => v !== undefined);
      if (entries.length > 0) {
        const row = await trx
          .selectFrom("settings")
          .select(["value", "version"])
          .where("key", "=", RUNTIME_SETTINGS_KEY)
          .executeTakeFirst();
        let overrides: Record<string, unknown> = {};
        try {
          const parsed = row ? JSON.parse(row.value) : {};
          if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) overrides = parsed;
        } catch {
          overrides = {};
        }
        for (const [k, v] of entries) overrides[k] = v;
        const value = JSON.stringify(overrides);
        if (row)
          await trx
            .updateTable("settings")
            .set({ value, version: row.version + 1, updated_at: now })
            .where("key", "=", RUNTIME_SETTINGS_KEY)
            .execute();
        else
          await trx
            .insertInto("settings")
            .values({ key: RUNTIME_SETTINGS_KEY, value, version: 1, updated_at: now })
            .execute();
        counts.settings.imported.push(...entries.map(([k]) => k));
      }

      // ------------------------------------------------------------ admin password and TOTP
      if (plan.admin.passwordHash) {
        const cur = await trx
          .selectFrom("admin_credentials")
          .selectAll()
          .where("id", "=", 1)
          .executeTakeFirst();
        const oursSet = cur?.password_hash != null && cur.password_hash !== plan.admin.passwordHash;
        if (oursSet && !cur.password_hash?.startsWith("$2")) {
          skipped.push({
            kind: "admin",
            item: "password",
            reason: "codex-lb already has its own admin password (set or re-hashed here); it is kept",
          });
        } else {
          const patch = {
            password_hash: plan.admin.passwordHash,
            bootstrap_token_hash: null,
            totp_secret: totpSealed,
            totp_pending_secret: null,
            totp_last_step: totpSealed ? plan.admin.totpLastStep : null,
            recovery_codes: null,
            updated_at: now,
          };
          await trx
            .insertInto("admin_credentials")
            .values({ id: 1, ...patch })
            .onConflict((oc) => oc.column("id").doUpdateSet(patch))
            .execute();
          // Sessions opened under another password end.
          if (oursSet) await trx.deleteFrom("admin_sessions").execute();
          counts.admin.password = true;
          counts.admin.totp = totpSealed !== null;
        }
      }
      // ------------------------------------------------------------ request-log history (optional)
      if (opts.historyFrom) counts.history = await importHistory(trx, opts.historyFrom, ourIdOf, keyIdOf);
      if (opts.dryRun) throw new DryRun();
    });
  } catch (e) {
    if (!(e instanceof DryRun)) throw e;
  }
  opts.skipped.push(...skipped);
  opts.notes.push(...notes);
  return counts;
}
