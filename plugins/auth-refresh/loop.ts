/**
 * A background loop: runs `tick`, waits the delay it returns, runs it again; never two ticks at
 * once. `stop()` clears the timer and waits for a running tick, so a process or test can exit.
 *
 * @module
 */
import type { PluginLogger, TimerHandle, Timers } from "../../src/plugin-api.ts";

/** A running background loop. */
export interface Loop {
  stop(): Promise<void>;
}

/** Starts `tick` after `firstDelayMs`; each tick returns the delay before the next one. */
export function startLoop(
  name: string,
  firstDelayMs: number,
  tick: () => Promise<number>,
  log: PluginLogger,
  timers: Timers,
): Loop {
  let timer: TimerHandle | undefined;
  let running: Promise<void> | null = null;
  let stopped = false;
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = timers.setTimeout(() => {
      running = (async () => {
        let next = firstDelayMs;
        try {
          next = await tick();
        } catch (e) {
          log.error(
            { loop: name, err: e instanceof Error ? e.message : String(e) },
            "background loop tick failed",
          );
        }
        running = null;
        schedule(next);
      })();
    }, ms);
  };
  schedule(firstDelayMs);
  return {
    async stop() {
      stopped = true;
      timers.clearTimeout(timer);
      await running;
    },
  };
}
