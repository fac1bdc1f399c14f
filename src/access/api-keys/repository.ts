/**
 * API keys in the store: rows of `api_keys` with their `api_key_limits`, as typed records. The plain
 * key never reaches this module's tables; lookups by presented key go prefix → constant-time hash.
 *
 * @module
 */
import type { Kysely, Selectable } from "kysely";
import { constantTimeEqual } from "../../core/crypto.ts";
import { inTransaction } from "../../store/audit.ts";
import type { ApiKeysTable, Database } from "../../store/schema.ts";
import { generateApiKey, hashApiKey, keyPrefixOf } from "./key.ts";
import type { LimitSpec, LimitType, LimitWindow } from "./limits.ts";

export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly keyPrefix: string;
  readonly isActive: boolean;
  readonly expiresAt: number | null;
  /** null = every model. */
  readonly allowedModels: readonly string[] | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly lastUsedAt: number | null;
  readonly limits: readonly LimitSpec[];
}

export interface ApiKeyInput {
  readonly name?: string;
  readonly isActive?: boolean;
  readonly expiresAt?: number | null;
  readonly allowedModels?: readonly string[] | null;
  readonly limits?: readonly LimitSpec[];
}

type Db = Kysely<Database>;
type KeyRow = Selectable<ApiKeysTable>;

function parseModels(json: string | null): string[] | null {
  if (json === null) return null;
  try {
    const v = JSON.parse(json);
    return Array.isArray(v) ? v.map(String) : null;
  } catch {
    return null;
  }
}

async function limitsOf(db: Db, ids: readonly string[]): Promise<Map<string, LimitSpec[]>> {
  const out = new Map<string, LimitSpec[]>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom("api_key_limits")
    .selectAll()
    .where("api_key_id", "in", ids)
    .orderBy("id")
    .execute();
  for (const r of rows) {
    const list = out.get(r.api_key_id) ?? [];
    list.push({
      limitType: r.limit_type as LimitType,
      limitWindow: r.limit_window as LimitWindow,
      maxValue: r.max_value,
    });
    out.set(r.api_key_id, list);
  }
  return out;
}

function toRecord(r: KeyRow, limits: readonly LimitSpec[]): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    keyPrefix: r.key_prefix,
    isActive: r.is_active === 1,
    expiresAt: r.expires_at,
    allowedModels: parseModels(r.allowed_models),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastUsedAt: r.last_used_at,
    limits,
  };
}

function modelsJson(models: readonly string[] | null | undefined): string | null {
  return models && models.length > 0 ? JSON.stringify([...new Set(models.map((m) => m.trim()))]) : null;
}

async function replaceLimits(db: Db, id: string, limits: readonly LimitSpec[]): Promise<void> {
  await db.deleteFrom("api_key_limits").where("api_key_id", "=", id).execute();
  if (limits.length === 0) return;
  await db
    .insertInto("api_key_limits")
    .values(
      limits.map((l) => ({
        api_key_id: id,
        limit_type: l.limitType,
        limit_window: l.limitWindow,
        max_value: l.maxValue,
      })),
    )
    .execute();
}

export async function listApiKeys(db: Db): Promise<ApiKeyRecord[]> {
  const rows = await db.selectFrom("api_keys").selectAll().orderBy("created_at").orderBy("id").execute();
  const limits = await limitsOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toRecord(r, limits.get(r.id) ?? []));
}

export async function getApiKey(db: Db, id: string): Promise<ApiKeyRecord | null> {
  const r = await db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
  if (!r) return null;
  return toRecord(r, (await limitsOf(db, [id])).get(id) ?? []);
}

/** Creates a key; the plain key is returned once and never stored. */
export async function createApiKey(
  db: Db,
  input: ApiKeyInput & { name: string },
  now: number,
): Promise<{ record: ApiKeyRecord; key: string }> {
  const key = generateApiKey();
  const id = crypto.randomUUID();
  const hash = await hashApiKey(key);
  await inTransaction(db, async (tx) => {
    await tx
      .insertInto("api_keys")
      .values({
        id,
        name: input.name,
        key_hash: hash,
        key_prefix: keyPrefixOf(key),
        is_active: input.isActive === false ? 0 : 1,
        expires_at: input.expiresAt ?? null,
        allowed_models: modelsJson(input.allowedModels),
        created_at: now,
        updated_at: now,
        last_used_at: null,
      })
      .execute();
    await replaceLimits(tx, id, input.limits ?? []);
  });
  return { record: (await getApiKey(db, id))!, key };
}

/** Applies the given fields; `limits`, when given, replaces the whole list. Null when unknown. */
export async function updateApiKey(
  db: Db,
  id: string,
  input: ApiKeyInput,
  now: number,
): Promise<ApiKeyRecord | null> {
  const found = await inTransaction(db, async (tx) => {
    const res = await tx
      .updateTable("api_keys")
      .set({
        updated_at: now,
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.isActive !== undefined ? { is_active: input.isActive ? 1 : 0 } : {}),
        ...(input.expiresAt !== undefined ? { expires_at: input.expiresAt } : {}),
        ...(input.allowedModels !== undefined ? { allowed_models: modelsJson(input.allowedModels) } : {}),
      })
      .where("id", "=", id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return false;
    if (input.limits !== undefined) await replaceLimits(tx, id, input.limits);
    return true;
  });
  return found ? getApiKey(db, id) : null;
}

/** Replaces the secret; every other property stays. The old key stops working at once. */
export async function regenerateApiKey(
  db: Db,
  id: string,
  now: number,
): Promise<{ record: ApiKeyRecord; key: string } | null> {
  const key = generateApiKey();
  const res = await db
    .updateTable("api_keys")
    .set({ key_hash: await hashApiKey(key), key_prefix: keyPrefixOf(key), updated_at: now })
    .where("id", "=", id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) return null;
  return { record: (await getApiKey(db, id))!, key };
}

/** Deletes a key and its limits; false when unknown. Request logs keep the id for history. */
export async function deleteApiKey(db: Db, id: string): Promise<boolean> {
  const res = await db.deleteFrom("api_keys").where("id", "=", id).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}

/** The key record matching a presented plain key (any state), or null. Hashes compared in constant time. */
export async function findByPresentedKey(db: Db, presented: string): Promise<ApiKeyRecord | null> {
  const hash = await hashApiKey(presented);
  const candidates = await db
    .selectFrom("api_keys")
    .selectAll()
    .where("key_prefix", "=", keyPrefixOf(presented))
    .execute();
  let match: KeyRow | null = null;
  for (const c of candidates) if (constantTimeEqual(c.key_hash, hash)) match = c;
  if (!match) return null;
  return toRecord(match, (await limitsOf(db, [match.id])).get(match.id) ?? []);
}

/** Records use, at most once per `everyMs` per key (keeps the write rate low under load). */
export async function touchLastUsed(db: Db, id: string, now: number, everyMs: number): Promise<void> {
  await db
    .updateTable("api_keys")
    .set({ last_used_at: now })
    .where("id", "=", id)
    .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", now - everyMs)]))
    .execute();
}
