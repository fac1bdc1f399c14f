/**
 * Runtime settings: the few settings an operator may change while the gateway runs
 * (`GET/PUT /api/settings`). Each one's default is its environment setting
 * (`src/settings/schema.ts`); a change is stored as an override in the `settings` table under one
 * key, so the whole document has one optimistic `version`.
 *
 * Reads are cached for a few seconds (a request path reads them on every selection); a write
 * through this object drops the cache at once, another process sees it within the cache time.
 *
 * @module
 */
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { Kysely } from "kysely";
import { systemClock } from "../core/clock.ts";
import { GatewayError } from "../core/errors.ts";
import { FillGuard } from "../core/fill-guard.ts";
import type { EpochMs } from "../core/types.ts";
import { routingStrategies, type Settings } from "../settings/schema.ts";
import { type AuditOf, auditIn, inTransaction } from "../store/audit.ts";
import type { Database } from "../store/schema.ts";

/** The key of the settings row that holds the overrides. */
export const RUNTIME_SETTINGS_KEY = "runtime";

export const RoutingStrategySchema = Type.Union(
  routingStrategies.map((s) => Type.Literal(s)),
  { description: "How the balancer picks among usable accounts." },
);

/** Every runtime setting with its type; add a key here (and its env default in `defaultsFrom`). */
export const RuntimeSettingsSchema = Type.Object(
  {
    routingStrategy: RoutingStrategySchema,
    stickyTtlSeconds: Type.Integer({
      minimum: 1,
      maximum: 30 * 24 * 3600,
      description: "Seconds a sticky key stays bound to its account after its last use.",
    }),
    apiKeyAuthEnabled: Type.Boolean({
      description: "Require an API key from every proxy client; off: only local clients, without a key.",
    }),
  },
  { additionalProperties: false },
);
export type RuntimeSettings = Static<typeof RuntimeSettingsSchema>;
export type RuntimeSettingKey = keyof RuntimeSettings;

/** The settings with the document's version (0 while nothing was ever changed). */
export type RuntimeSettingsDocument = RuntimeSettings & { readonly version: number };

/** A change: a value sets an override, `null` goes back to the environment default. */
export type RuntimeSettingsPatch = { [K in RuntimeSettingKey]?: RuntimeSettings[K] | null };

/** Runtime defaults taken from the environment settings. */
export function defaultsFrom(settings: Readonly<Settings>): RuntimeSettings {
  return {
    routingStrategy: settings.routingStrategy,
    stickyTtlSeconds: Math.max(1, Math.round(settings.stickyTtlSeconds)),
    apiKeyAuthEnabled: settings.apiKeyAuthEnabled,
  };
}

/** Keeps only the stored overrides that still type-check (a value from an older build is ignored). */
function validOverrides(raw: unknown): Partial<RuntimeSettings> {
  const out: Record<string, unknown> = {};
  if (!raw || typeof raw !== "object") return out;
  const props = RuntimeSettingsSchema.properties as Record<string, import("@sinclair/typebox").TSchema>;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const schema = props[k];
    if (schema && Value.Check(schema, v)) out[k] = v;
  }
  return out as Partial<RuntimeSettings>;
}

/** Read access for plugins (`GatewayServices.runtimeSettings`). */
export interface RuntimeSettingsReader {
  get(): Promise<RuntimeSettingsDocument>;
  /**
   * The document `get()` would answer from its cache, or null when it must read the store: a
   * request path that decides at once uses it and calls `get()` only on null. (Optional: a reader
   * of your own need not have a cache.)
   */
  cached?(): RuntimeSettingsDocument | null;
}

export class RuntimeSettingsStore implements RuntimeSettingsReader {
  #cache: { doc: RuntimeSettingsDocument; at: EpochMs } | null = null;
  /** When a read of the row may fill the cache (src/core/fill-guard.ts); a change drops it. */
  readonly #fills = new FillGuard<"document">();
  readonly #listeners: (() => void)[] = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly defaults: RuntimeSettings,
    private readonly clock: () => EpochMs = systemClock.now,
    private readonly cacheMs = 5_000,
  ) {}

  async get(): Promise<RuntimeSettingsDocument> {
    const cached = this.cached();
    if (cached) return cached;
    const now = this.clock();
    // Written, forgotten or invalidated while the row was read: this caller gets what it read, the
    // cache keeps what the change left.
    return this.#fills.read(
      "document",
      () => this.#read(),
      (doc) => {
        this.#cache = { doc, at: now };
      },
    );
  }

  cached(): RuntimeSettingsDocument | null {
    return this.#cache && this.clock() - this.#cache.at < this.cacheMs ? this.#cache.doc : null;
  }

  /** Drops the cached document (the row was written elsewhere, e.g. by an import). */
  invalidate(): void {
    this.#set(null);
  }

  /** The cache replaced by a change: no read under way may fill it any more. */
  #set(cache: { doc: RuntimeSettingsDocument; at: EpochMs } | null): void {
    this.#cache = cache;
    this.#fills.drop();
  }

  /**
   * Applies `patch`. With `expectedVersion`, refuses (409 `settings_conflict`) when the stored
   * version differs, so two dashboards editing at once cannot silently undo each other.
   */
  async update(
    patch: RuntimeSettingsPatch,
    expectedVersion?: number,
    /** The audit row (given the document before the change), written in the same transaction. */
    audit?: AuditOf<RuntimeSettingsDocument>,
  ): Promise<RuntimeSettingsDocument> {
    const now = this.clock();
    const doc = await inTransaction(this.db, async (trx) => {
      const row = await trx
        .selectFrom("settings")
        .select(["value", "version"])
        .where("key", "=", RUNTIME_SETTINGS_KEY)
        .executeTakeFirst();
      const current = row?.version ?? 0;
      if (expectedVersion !== undefined && expectedVersion !== current) {
        throw new GatewayError(
          "settings_conflict",
          `Settings are at version ${current}, not ${expectedVersion}; reload them and apply your change again`,
          { version: current },
        );
      }
      const overrides: Record<string, unknown> = { ...validOverrides(row ? safeParse(row.value) : {}) };
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) continue;
        if (v === null) delete overrides[k];
        else overrides[k] = v;
      }
      const value = JSON.stringify(overrides);
      if (row) {
        const res = await trx
          .updateTable("settings")
          .set({ value, version: current + 1, updated_at: now })
          .where("key", "=", RUNTIME_SETTINGS_KEY)
          .where("version", "=", current)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw new GatewayError("settings_conflict");
      } else {
        await trx
          .insertInto("settings")
          .values({ key: RUNTIME_SETTINGS_KEY, value, version: 1, updated_at: now })
          .execute();
      }
      await auditIn(trx, audit, {
        ...this.defaults,
        ...validOverrides(row ? safeParse(row.value) : {}),
        version: current,
      });
      return { ...this.defaults, ...validOverrides(overrides), version: current + 1 };
    });
    this.#set({ doc, at: now });
    for (const fn of this.#listeners) fn();
    return doc;
  }

  /** Drops the cached document (another replica changed it). */
  forget(): void {
    this.#set(null);
  }

  /** Runs `fn` after every update (the cluster tells the other replicas). */
  onUpdated(fn: () => void): void {
    this.#listeners.push(fn);
  }

  async #read(): Promise<RuntimeSettingsDocument> {
    const row = await this.db
      .selectFrom("settings")
      .select(["value", "version"])
      .where("key", "=", RUNTIME_SETTINGS_KEY)
      .executeTakeFirst();
    if (!row) return { ...this.defaults, version: 0 };
    return { ...this.defaults, ...validOverrides(safeParse(row.value)), version: row.version };
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
