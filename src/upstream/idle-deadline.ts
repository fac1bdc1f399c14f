/**
 * An idle deadline over a run of waits (reads of an upstream stream, waits for a socket's frames):
 * one timer for the whole run, moved on lazily. A wait arms the timer only when none is set; when
 * the timer fires early (waits ended since), it is set again for what is left of the pending wait,
 * instead of a timer set and cleared for every chunk or frame. The deadline is the start of the
 * pending wait plus `ms`; with no wait pending a firing does nothing (the next wait arms it again).
 *
 * @module
 */
import type { Clock, TimerHandle } from "../core/clock.ts";

export class IdleDeadline {
  #timer: TimerHandle | undefined;
  /** When the pending wait began (-1: no wait pending). */
  #since = -1;

  constructor(
    readonly ms: number,
    private readonly timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout">,
    /** Called once the pending wait has lasted `ms`. */
    private readonly expire: () => void,
  ) {}

  /** A wait begins. */
  begin(): void {
    this.#since = this.timers.now();
    this.#timer ??= this.timers.setTimeout(this.#fire, this.ms);
  }

  /** The pending wait ended (the timer stays, for the next wait). */
  end(): void {
    this.#since = -1;
  }

  /** No more waits: the timer is cleared. */
  disarm(): void {
    if (this.#timer !== undefined) {
      this.timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    if (this.#since < 0) return;
    const waited = this.timers.now() - this.#since;
    if (waited < this.ms) {
      this.#timer = this.timers.setTimeout(this.#fire, this.ms - waited);
      return;
    }
    this.expire();
  };
}
