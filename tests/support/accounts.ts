/**
 * Test helper: inserts an account row directly (the accounts issue owns the real import/login).
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { AccountStatus } from "../../src/core/types.ts";
import type { Database } from "../../src/store/schema.ts";

export interface SeedAccount {
  readonly id: string;
  /** Sent upstream as `chatgpt-account-id`; defaults to `chatgpt-<id>`. */
  readonly chatgptAccountId?: string;
  readonly email?: string;
  readonly status?: AccountStatus;
  readonly resetAt?: number | null;
  readonly cooldownUntil?: number | null;
  /** Orders `listSnapshots` (oldest first). */
  readonly createdAt?: number;
}

let seq = 0;

export async function seedAccount(db: Kysely<Database>, a: SeedAccount): Promise<void> {
  const now = Date.now();
  await db
    .insertInto("accounts")
    .values({
      id: a.id,
      chatgpt_account_id: a.chatgptAccountId ?? `chatgpt-${a.id}`,
      chatgpt_user_id: null,
      email: a.email ?? `${a.id}@example.test`,
      alias: null,
      plan_type: "plus",
      codex_installation_id: crypto.randomUUID(),
      access_token_enc: null,
      refresh_token_enc: null,
      id_token_enc: null,
      access_token_expires_at: null,
      last_refresh_at: null,
      status: a.status ?? "active",
      status_reason: null,
      reset_at: a.resetAt ?? null,
      blocked_at: null,
      cooldown_until: a.cooldownUntil ?? null,
      last_selected_at: null,
      created_at: a.createdAt ?? now + seq++,
      updated_at: now,
    })
    .execute();
}
