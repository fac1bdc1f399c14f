/**
 * Which account produced a response: `previous_response_id` continues a conversation the upstream
 * only knows on that account, so routing asks here. Owners live in `response_owners` (filled by a
 * trigger on each request-log insert, pruned by the writer after the TTL), not in an index over
 * every log row.
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";

/** The account that served `responseId`, or null when unknown (not yet flushed, or pruned). */
export async function responseOwner(db: Kysely<Database>, responseId: string): Promise<string | null> {
  const row = await db
    .selectFrom("response_owners")
    .select("account_id")
    .where("response_id", "=", responseId)
    .executeTakeFirst();
  return row?.account_id ?? null;
}
