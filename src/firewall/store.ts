/**
 * The firewall allowlist in the store (`firewall_allowlist`): normalised addresses and CIDR ranges.
 * The list is cached in memory and replaced whenever a route changes it, so the `request.admit`
 * check costs no query. An empty list allows every client.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { formatCidr, parseCidr } from "../core/address.ts";
import { GatewayError } from "../core/errors.ts";
import { FillGuard } from "../core/fill-guard.ts";
import { type AuditOf, auditIn, inTransaction } from "../store/audit.ts";
import type { Database } from "../store/schema.ts";

export interface AllowlistEntry {
  readonly entry: string;
  readonly createdAt: number;
}

/** Canonical form of an allowlist entry, or null when it is neither an address nor a CIDR range. */
export function normalizeEntry(input: string): string | null {
  const c = parseCidr(input);
  return c ? formatCidr(c) : null;
}

function mustNormalize(input: string): string {
  const e = normalizeEntry(input);
  if (!e) {
    throw new GatewayError(
      "validation_error",
      `'${input}' is not an IPv4/IPv6 address or CIDR range (host bits must be zero, e.g. 10.0.0.0/8)`,
      { param: "entry" },
    );
  }
  return e;
}

export class FirewallStore {
  #cache: readonly string[] | null = null;
  /** When a read of the list may fill the cache (src/core/fill-guard.ts). */
  readonly #fills = new FillGuard<"list">();
  readonly #listeners: (() => void)[] = [];

  #drop(): void {
    this.#cache = null;
    this.#fills.drop();
  }

  /** Drops the cached list (another replica changed it). */
  forget(): void {
    this.#drop();
  }

  /** Runs `fn` after every change of the list (the cluster tells the other replicas). */
  onChanged(fn: () => void): void {
    this.#listeners.push(fn);
  }

  #changed(): void {
    this.#drop();
    for (const fn of this.#listeners) fn();
  }

  constructor(private readonly db: Kysely<Database>) {}

  async list(): Promise<AllowlistEntry[]> {
    const rows = await this.db.selectFrom("firewall_allowlist").selectAll().orderBy("created_at").execute();
    return rows.map((r) => ({ entry: r.entry, createdAt: r.created_at }));
  }

  /** The entries as strings, cached; the same array object until the list changes. */
  async allowlist(): Promise<readonly string[]> {
    if (this.#cache) return this.#cache;
    return this.#fills.read(
      "list",
      async () => Object.freeze((await this.list()).map((e) => e.entry)),
      (list) => {
        this.#cache = list;
      },
    );
  }

  /** What `allowlist()` answers from its cache, or null when it must read the store. */
  cached(): readonly string[] | null {
    return this.#cache;
  }

  /** Drops the cached list (the table was written elsewhere, e.g. by an import). */
  invalidate(): void {
    this.#drop();
  }

  /** Adds one entry; 400 when malformed, 409 when already listed. `audit`: written in the same transaction. */
  async add(input: string, now: number, audit?: AuditOf<AllowlistEntry>): Promise<AllowlistEntry> {
    const entry = mustNormalize(input);
    const added = await inTransaction(this.db, async (tx) => {
      const res = await tx
        .insertInto("firewall_allowlist")
        .values({ entry, created_at: now })
        .onConflict((oc) => oc.column("entry").doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0n) === 0) return null;
      const out = { entry, createdAt: now };
      await auditIn(tx, audit, out);
      return out;
    });
    this.#changed();
    if (!added) throw new GatewayError("conflict", `${entry} is already on the allowlist`);
    return added;
  }

  /** Removes one entry (given in any spelling); false when it was not listed. */
  async remove(input: string, audit?: AuditOf<string>): Promise<boolean> {
    const entry = normalizeEntry(input);
    if (!entry) return false;
    const removed = await inTransaction(this.db, async (tx) => {
      const res = await tx.deleteFrom("firewall_allowlist").where("entry", "=", entry).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) return false;
      await auditIn(tx, audit, entry);
      return true;
    });
    this.#changed();
    return removed;
  }

  /** Replaces the whole list atomically (all entries validated first). */
  async replace(
    inputs: readonly string[],
    now: number,
    audit?: AuditOf<readonly string[]>,
  ): Promise<AllowlistEntry[]> {
    const entries = [...new Set(inputs.map(mustNormalize))];
    await inTransaction(this.db, async (tx) => {
      await tx.deleteFrom("firewall_allowlist").execute();
      if (entries.length > 0)
        await tx
          .insertInto("firewall_allowlist")
          .values(entries.map((entry) => ({ entry, created_at: now })))
          .execute();
      await auditIn(tx, audit, entries);
    });
    this.#changed();
    return this.list();
  }
}
