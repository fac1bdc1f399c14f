/**
 * Failed-attempt limiter for credentials (password, TOTP, bootstrap token): at most
 * {@link MAX_FAILURES} failures per client address in a sliding {@link WINDOW_MS}; beyond that every
 * attempt is refused with 429 `too_many_attempts` and Retry-After until the oldest failure ages
 * out. In memory: a single process serves the admin API.
 *
 * @module
 */
import { GatewayError } from "../../core/errors.ts";

export const MAX_FAILURES = 8;
export const WINDOW_MS = 60_000;

export class AttemptLimiter {
  readonly #failures = new Map<string, number[]>();

  constructor(
    private readonly max = MAX_FAILURES,
    private readonly windowMs = WINDOW_MS,
  ) {}

  #recent(key: string, now: number): number[] {
    const list = (this.#failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, list);
    return list;
  }

  /** Throws 429 when `address` has used up its failures; call before checking a credential. */
  check(address: string | null, now: number): void {
    const list = this.#recent(address ?? "unknown", now);
    if (list.length >= this.max) {
      const seconds = Math.max(1, Math.ceil((list[0]! + this.windowMs - now) / 1000));
      throw new GatewayError(
        "too_many_attempts",
        `Too many failed attempts from this address; try again in ${seconds} seconds`,
        {},
        { "retry-after": String(seconds) },
      );
    }
  }

  fail(address: string | null, now: number): void {
    const key = address ?? "unknown";
    const list = this.#recent(key, now);
    list.push(now);
    this.#failures.set(key, list);
    // Bound memory under a spray of addresses: forget the oldest entries.
    if (this.#failures.size > 10_000) {
      const first = this.#failures.keys().next().value;
      if (first !== undefined) this.#failures.delete(first);
    }
  }
}
