/**
 * Typed accessor for the access-control runtime settings kept in the `settings` table (JSON values,
 * versioned). Only `apiKeyAuthEnabled` lives here; it is read on every proxy request (one primary
 * key lookup), so a change made by any route takes effect on the next request.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

export const API_KEY_AUTH_ENABLED = "apiKeyAuthEnabled";

/** Whether every proxy request must carry a valid API key. Default false (loopback-only without a key). */
export async function getApiKeyAuthEnabled(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectFrom("settings")
    .select("value")
    .where("key", "=", API_KEY_AUTH_ENABLED)
    .executeTakeFirst();
  if (!row) return false;
  try {
    return JSON.parse(row.value) === true;
  } catch {
    return false;
  }
}

/** Stores the flag (upsert, version + 1). */
export async function setApiKeyAuthEnabled(db: Kysely<Database>, value: boolean, now: number): Promise<void> {
  await db
    .insertInto("settings")
    .values({ key: API_KEY_AUTH_ENABLED, value: JSON.stringify(value), version: 1, updated_at: now })
    .onConflict((oc) =>
      oc.column("key").doUpdateSet((eb) => ({
        value: JSON.stringify(value),
        version: eb("settings.version", "+", 1),
        updated_at: now,
      })),
    )
    .execute();
}
