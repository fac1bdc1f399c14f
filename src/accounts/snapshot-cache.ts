/**
 * Every account as a snapshot, cached so a proxied request does not read the store: this is what
 * `services.accounts.list()` answers. Dropped whenever the action applier or the account
 * repository changes an account (status, cooldown, reset, login, usage, delete), and otherwise
 * re-read at most every {@link SNAPSHOT_TTL_MS} — for a change this process did not announce
 * (another process or replica, a statement outside the repository).
 *
 * Given a `stamp` of the tables read (on SQLite: the store connection's writes to them plus
 * `PRAGMA data_version` for other connections' commits, see `SyncSql.watchStamp`), the cache asks
 * for it every {@link SNAPSHOT_TTL_MS} instead and re-reads only when it changed: reading every
 * account and its latest usage windows took ~2 ms under load, once a second.
 *
 * @module
 */
import type { AccountSnapshot } from "../core/types.ts";

export const SNAPSHOT_TTL_MS = 1000;

export class SnapshotCache {
  #list: readonly AccountSnapshot[] | null = null;
  /** The stamp taken just before `#list` was read (null without a `stamp`). */
  #stamp: string | null = null;
  #at = 0;
  #generation = 0;
  #loading: Promise<readonly AccountSnapshot[]> | null = null;

  constructor(
    private readonly load: () => Promise<readonly AccountSnapshot[]>,
    private readonly ttlMs = SNAPSHOT_TTL_MS,
    /** Changes whenever what `load` reads may have changed (absent: re-read every `ttlMs`). */
    private readonly stamp?: () => Promise<string>,
  ) {}

  async list(): Promise<readonly AccountSnapshot[]> {
    const kept = this.current();
    if (kept) return kept;
    if (this.#loading) return this.#loading;
    const generation = this.#generation;
    this.#loading = this.#refresh(generation).finally(() => {
      this.#loading = null;
    });
    return this.#loading;
  }

  /** The kept list while it is fresh, else null (then `list()` reads): a caller may go on at once. */
  current(): readonly AccountSnapshot[] | null {
    return this.#list && performance.now() - this.#at < this.ttlMs ? this.#list : null;
  }

  async #refresh(generation: number): Promise<readonly AccountSnapshot[]> {
    // Taken before reading: a write landing during the read changes it for the next check.
    const stamp = this.stamp ? await this.stamp() : null;
    const kept = this.#list;
    if (kept && stamp !== null && stamp === this.#stamp && generation === this.#generation) {
      this.#at = performance.now();
      return kept;
    }
    const list = await this.load();
    // A change applied while loading makes this read stale: keep it for this caller only.
    if (generation === this.#generation) {
      this.#list = list;
      this.#stamp = stamp;
      this.#at = performance.now();
    }
    return list;
  }

  /** Forgets the cached list (called after every applied account action). */
  invalidate(): void {
    this.#generation++;
    this.#list = null;
    this.#loading = null;
  }
}
