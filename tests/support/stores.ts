/**
 * The store dialects every store test runs against: a fresh SQLite file and a fresh PostgreSQL
 * database on the test server (tests/support/postgres.ts).
 *
 * @module
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openMigratedStore, type Store, type StoreLocation } from "../../src/store/store.ts";
import { createTestDatabase } from "./postgres.ts";

export interface StoreVariant {
  readonly name: "sqlite" | "postgres";
  /** A new, empty location of this kind. */
  location(label?: string): Promise<StoreLocation>;
}

export const storeVariants: readonly StoreVariant[] = [
  {
    name: "sqlite",
    location: async () => ({
      kind: "sqlite",
      path: join(mkdtempSync(join(tmpdir(), "codex-lb-store-")), "store.db"),
    }),
  },
  {
    name: "postgres",
    location: async (label = "store") => ({ kind: "postgres", url: await createTestDatabase(label) }),
  },
];

/** A migrated store in a new, empty location of `variant`'s kind. */
export async function openTestStore(variant: StoreVariant, label?: string): Promise<Store> {
  return openMigratedStore(await variant.location(label));
}
