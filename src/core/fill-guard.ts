/**
 * When a read of the store may fill an in-memory cache: the one rule every cache the gateway fills
 * from a store read follows (the firewall allowlist, the runtime settings, the sticky bindings).
 *
 * - A read that was under way when its key (or every key) was dropped does not fill the cache: a
 *   change landed while it read, so what it read may be older than the change. Its caller still
 *   gets what it read.
 * - Of reads of one key under way together, one begun earlier never replaces what one begun later
 *   put in: their answers may come back in any order (pooled PostgreSQL connections).
 * - Otherwise a read fills, so when many requests miss one key at once, the first answer to come
 *   back fills it (none waits for the last read begun).
 *
 * Memory: one small record per key with a read under way, none otherwise.
 *
 * @module
 */

interface KeyReads {
  /** Reads of the key under way that began after its last drop. */
  reads: number;
  /** The order number of the read whose answer last filled the key (0: none yet). */
  filled: number;
}

export class FillGuard<K> {
  /** Order numbers of reads, in the order they began. */
  #begun = 0;
  readonly #keys = new Map<K, KeyReads>();

  /**
   * Reads `key` through `read` and, when the rule above allows, hands the answer to `fill` (which
   * puts it in the cache) before returning it. A failed read fills nothing.
   */
  async read<T>(key: K, read: () => Promise<T>, fill: (value: T) => void): Promise<T> {
    let k = this.#keys.get(key);
    if (k === undefined) {
      k = { reads: 0, filled: 0 };
      this.#keys.set(key, k);
    }
    k.reads++;
    const order = ++this.#begun;
    try {
      const value = await read();
      // Still the key's record (no drop since this read began), and no later read filled it.
      if (this.#keys.get(key) === k && order > k.filled) {
        k.filled = order;
        fill(value);
      }
      return value;
    } finally {
      if (--k.reads === 0 && this.#keys.get(key) === k) this.#keys.delete(key);
    }
  }

  /** A change: no read of `key` under way (of any key, without one) may fill the cache any more. */
  drop(key?: K): void {
    if (key === undefined) this.#keys.clear();
    else this.#keys.delete(key);
  }

  /** Keys with a read under way (for tests: a finished read leaves nothing behind). */
  get pending(): number {
    return this.#keys.size;
  }
}
