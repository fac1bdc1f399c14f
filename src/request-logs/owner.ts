/**
 * Which account produced a response: `previous_response_id` continues a conversation the upstream
 * only knows on that account, so routing (a later balancing rule) asks here.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

/** The account that served `responseId`, or null when unknown (or not yet flushed). */
export async function responseOwner(db: Kysely<Database>, responseId: string): Promise<string | null> {
  const row = await db
    .selectFrom("request_logs")
    .select("account_id")
    .where("response_id", "=", responseId)
    .where("account_id", "is not", null)
    .orderBy("id", "desc")
    .limit(1)
    .executeTakeFirst();
  return row?.account_id ?? null;
}
