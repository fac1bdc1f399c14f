/**
 * Credential attempt limiter (password, TOTP, recovery code, bootstrap token): at most
 * {@link MAX_FAILURES} counted attempts per client address in a sliding {@link WINDOW_MS}. An
 * attempt is counted BEFORE the credential is verified ({@link AttemptLimiter.begin}) and refunded
 * only when it turns out right, so however many requests race in parallel, at most
 * {@link MAX_FAILURES} wrong credentials are ever verified per address per window; the others get
 * 429 `too_many_attempts` with Retry-After without touching the hash. In memory: a single process
 * serves the admin API.
 *
 * @module
 */
import { GatewayError } from "../../core/errors.ts";

export const MAX_FAILURES = 8;
export const WINDOW_MS = 60_000;

/** One counted attempt: call {@link Attempt.succeeded} once the credential proved right. */
export interface Attempt {
  succeeded(): void;
}

/** Counts credential attempts: this in-memory limiter, or the store's when replicas share it. */
export interface AttemptCounter {
  /** Counts one attempt before the credential is checked; throws 429 `too_many_attempts` when used up. */
  begin(address: string | null, now: number): Attempt | Promise<Attempt>;
}

export class AttemptLimiter implements AttemptCounter {
  readonly #attempts = new Map<string, number[]>();

  constructor(
    private readonly max = MAX_FAILURES,
    private readonly windowMs = WINDOW_MS,
  ) {}

  #recent(key: string, now: number): number[] {
    const list = (this.#attempts.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.#attempts.delete(key);
    else this.#attempts.set(key, list);
    return list;
  }

  /**
   * Counts one attempt for `address` before its credential is checked; throws 429 when the
   * address has used up its attempts. Synchronous: parallel callers see each other's counts.
   */
  begin(address: string | null, now: number): Attempt {
    const key = address ?? "unknown";
    const list = this.#recent(key, now);
    if (list.length >= this.max) {
      const seconds = Math.max(1, Math.ceil((list[0]! + this.windowMs - now) / 1000));
      throw new GatewayError(
        "too_many_attempts",
        `Too many failed attempts from this address; try again in ${seconds} seconds`,
        {},
        { "retry-after": String(seconds) },
      );
    }
    list.push(now);
    this.#attempts.set(key, list);
    // Bound memory under a spray of addresses: forget the oldest entries.
    if (this.#attempts.size > 10_000) {
      const first = this.#attempts.keys().next().value;
      if (first !== undefined && first !== key) this.#attempts.delete(first);
    }
    let done = false;
    return {
      succeeded: () => {
        if (done) return;
        done = true;
        const current = this.#attempts.get(key);
        const i = current?.indexOf(now) ?? -1;
        if (current && i >= 0) {
          current.splice(i, 1);
          if (current.length === 0) this.#attempts.delete(key);
        }
      },
    };
  }

  /** Attempts counted for `address` in the window (for tests and diagnostics). */
  count(address: string | null, now: number): number {
    return this.#recent(address ?? "unknown", now).length;
  }
}
