/**
 * Every account as a snapshot, cached so a proxied request does not read the store: this is what
 * `services.accounts.list()` answers. Dropped whenever the action applier or the account
 * repository changes an account (status, cooldown, reset, login, usage, delete), and otherwise
 * re-read at most every {@link SNAPSHOT_TTL_MS}.
 *
 * @module
 */
import type { AccountSnapshot } from "../core/types.ts";

export const SNAPSHOT_TTL_MS = 1000;

export class SnapshotCache {
  #list: readonly AccountSnapshot[] | null = null;
  #at = 0;
  #generation = 0;
  #loading: Promise<readonly AccountSnapshot[]> | null = null;

  constructor(
    private readonly load: () => Promise<readonly AccountSnapshot[]>,
    private readonly ttlMs = SNAPSHOT_TTL_MS,
  ) {}

  async list(): Promise<readonly AccountSnapshot[]> {
    const now = performance.now();
    if (this.#list && now - this.#at < this.ttlMs) return this.#list;
    if (this.#loading) return this.#loading;
    const generation = this.#generation;
    this.#loading = this.load()
      .then((list) => {
        // A change applied while loading makes this read stale: keep it for this caller only.
        if (generation === this.#generation) {
          this.#list = list;
          this.#at = performance.now();
        }
        return list;
      })
      .finally(() => {
        this.#loading = null;
      });
    return this.#loading;
  }

  /** Forgets the cached list (called after every applied account action). */
  invalidate(): void {
    this.#generation++;
    this.#list = null;
    this.#loading = null;
  }
}
