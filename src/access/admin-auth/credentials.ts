/**
 * The admin credentials row (`admin_credentials`, id 1): password hash, TOTP secret and its last
 * accepted step, recovery code hashes, bootstrap token hash.
 *
 * @module
 */
import type { Kysely, Selectable, Updateable } from "kysely";
import type { AdminCredentialsTable, Database } from "../../store/schema.ts";

export type Credentials = Selectable<AdminCredentialsTable>;
type Db = Kysely<Database>;

const EMPTY: Omit<Credentials, "updated_at"> = {
  id: 1,
  password_hash: null,
  totp_secret: null,
  totp_pending_secret: null,
  totp_last_step: null,
  recovery_codes: null,
  bootstrap_token_hash: null,
};

export async function readCredentials(db: Db): Promise<Credentials> {
  const row = await db.selectFrom("admin_credentials").selectAll().where("id", "=", 1).executeTakeFirst();
  return row ?? { ...EMPTY, updated_at: 0 };
}

/** Writes the given columns (creating the row on first use). */
export async function writeCredentials(
  db: Db,
  patch: Omit<Updateable<AdminCredentialsTable>, "id" | "updated_at">,
  now: number,
): Promise<void> {
  await db
    .insertInto("admin_credentials")
    .values({ ...EMPTY, ...patch, updated_at: now } as Credentials)
    .onConflict((oc) => oc.column("id").doUpdateSet({ ...patch, updated_at: now }))
    .execute();
}

/**
 * Advances the last accepted TOTP step only if `step` is newer (compare-and-set), so two concurrent
 * logins with the same code cannot both succeed. True when this call won.
 */
export async function claimTotpStep(db: Db, step: number, now: number): Promise<boolean> {
  const res = await db
    .updateTable("admin_credentials")
    .set({ totp_last_step: step, updated_at: now })
    .where("id", "=", 1)
    .where((eb) => eb.or([eb("totp_last_step", "is", null), eb("totp_last_step", "<", step)]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Removes one recovery code hash if present (compare-and-set on the list). True when it was used now. */
export async function consumeRecoveryCode(db: Db, hash: string, now: number): Promise<boolean> {
  const cur = await readCredentials(db);
  const list: string[] = cur.recovery_codes ? JSON.parse(cur.recovery_codes) : [];
  if (!list.includes(hash)) return false;
  const res = await db
    .updateTable("admin_credentials")
    .set({ recovery_codes: JSON.stringify(list.filter((h) => h !== hash)), updated_at: now })
    .where("id", "=", 1)
    .where("recovery_codes", "=", cur.recovery_codes)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Sets the first password only if none is set (compare-and-set). False when another request won. */
export async function setFirstPasswordHash(db: Db, hash: string, now: number): Promise<boolean> {
  await db
    .insertInto("admin_credentials")
    .values({ ...EMPTY, updated_at: now })
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
  const res = await db
    .updateTable("admin_credentials")
    .set({ password_hash: hash, bootstrap_token_hash: null, updated_at: now })
    .where("id", "=", 1)
    .where("password_hash", "is", null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}
