/**
 * Time and randomness, injected: the only module that reads the system clock (`Date.now`) or
 * `Math.random`. Everything else takes a {@link Clock} and a {@link Random} (the gateway builds the
 * system ones by default; tests pass a {@link FakeClock} and a {@link seededRandom}). Timers of
 * background work go through the clock too, so a test moves time forward instead of sleeping.
 *
 * Security randomness (keys, IVs, tokens) is not this: it stays `crypto.getRandomValues`.
 *
 * @example
 * ```ts
 * const clock = new FakeClock(1_700_000_000_000);
 * clock.setTimeout(() => console.log("fired"), 30_000);
 * await clock.advance(30_000); // "fired", without waiting 30 s
 * ```
 *
 * @module
 */
import type { EpochMs } from "./types.ts";

/** An opaque timer handle. */
export type TimerHandle = { readonly __timer: true } | ReturnType<typeof setTimeout>;

/** Wall-clock time and timers. */
export interface Clock {
  /** Epoch milliseconds now. */
  now(): EpochMs;
  /** Runs `fn` once after `ms`; a background timer does not keep the process alive. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** Uniform randomness in [0, 1) (selection, jitter) and ids; never for secrets. */
export interface Random {
  next(): number;
  /** A version 4 UUID (request ids sent upstream): `crypto.randomUUID()`, or a repeatable one in tests. */
  uuid(): string;
  /**
   * A version 7 UUID (RFC 9562) for `ms`: the 48-bit Unix time in milliseconds, then 74 random bits.
   * The gateway's own request ids: rows logged one after another get neighbouring keys, so the
   * request-log's request-id index grows at its end instead of at random pages (flat insert cost).
   */
  timeOrderedId(ms: EpochMs): string;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * Resolves after `ms` on `timers` (a FakeClock's in tests): for a wait someone awaits, e.g. a
 * retry's backoff. On the real clock the wait keeps the process alive until it ends, unlike a
 * background timer (a CLI command retrying would otherwise exit mid-wait).
 */
export function sleep(ms: number, timers: Pick<Clock, "setTimeout"> = systemClock): Promise<void> {
  if (timers === systemClock) return new Promise((r) => setTimeout(r, ms));
  return new Promise((r) => {
    timers.setTimeout(r, ms);
  });
}

/** The real random source. */
export const systemRandom: Random = {
  next: () => Math.random(),
  uuid: () => crypto.randomUUID(),
  timeOrderedId: (ms) => uuidV7(ms, crypto.getRandomValues(new Uint8Array(10))),
};

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** A version 7 UUID of `ms` and 10 random bytes (their top 6 bits give way to version and variant). */
export function uuidV7(ms: number, rand: Uint8Array): string {
  const t = Math.max(0, Math.min(Math.floor(ms), 0xffff_ffff_ffff));
  const hi = Math.floor(t / 0x1_0000); // the top 32 of the 48 time bits
  const lo = t % 0x1_0000; // the low 16
  const h = (n: number) => HEX[n & 0xff]!;
  return (
    h(hi >>> 24) +
    h(hi >>> 16) +
    h(hi >>> 8) +
    h(hi) +
    "-" +
    h(lo >>> 8) +
    h(lo) +
    "-" +
    h(0x70 | (rand[0]! & 0x0f)) +
    h(rand[1]!) +
    "-" +
    h(0x80 | (rand[2]! & 0x3f)) +
    h(rand[3]!) +
    "-" +
    h(rand[4]!) +
    h(rand[5]!) +
    h(rand[6]!) +
    h(rand[7]!) +
    h(rand[8]!) +
    h(rand[9]!)
  );
}

/** A version 4 UUID made of `next()` draws (16 bytes, version and variant bits set). */
function uuidFrom(next: () => number): string {
  const b = Array.from({ length: 16 }, () => Math.floor(next() * 256));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A deterministic random source (mulberry32) for tests and benchmarks. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uuid: () => uuidFrom(next),
    timeOrderedId: (ms) =>
      uuidV7(
        ms,
        Uint8Array.from({ length: 10 }, () => Math.floor(next() * 256)),
      ),
  };
}

interface FakeTimer {
  readonly id: number;
  readonly at: EpochMs;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told: `advance(ms)` fires the timers that fall due, in order, each
 * with `now()` set to its due time, and lets the work they start run (their promises settle
 * between timers) before moving on.
 */
export class FakeClock implements Clock {
  #now: EpochMs;
  #seq = 0;
  #timers: FakeTimer[] = [];

  constructor(start: EpochMs = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): EpochMs {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#timers.push({ id, at: this.#now + delay, fn });
    this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
    return { __timer: true, id } as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    const id = (handle as { id?: number } | undefined)?.id;
    if (id !== undefined) this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Sets the time without firing anything (a jump, e.g. a suspended laptop). */
  set(now: EpochMs): void {
    this.#now = now;
  }

  /** Moves time forward by `ms`, firing due timers in order and settling the work each one starts. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + Math.max(0, ms);
    for (;;) {
      await settle();
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets pending promise callbacks and immediate I/O callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
