/**
 * Lets go of what start-up alone needed, before the gateway listens: Bun's `Bun.shrink()` asks the
 * engine to throw away the compiled code of every function (the bytecode of module bodies, route
 * and schema set-up, migrations, plugin set-up: run once, never again) and to collect. Functions
 * that run again are compiled again on their next call, as on their first; the source stays.
 *
 * Why: idle memory is about half the gateway's peak with 1,000 open streams (issue 15), and most of
 * the code compiled during start-up never runs again. Measured with `bun run scripts/bench-idle.ts`
 * (after a full GC): JS heap 9.8–10.0 → 5.9–6.3 MB, anonymous memory 31 → 26–27 MB, VmRSS 74.7–75.7
 * → 70.3–71.8 MB. The engine does the work once the current JavaScript has returned to the event
 * loop (JSC's `shrinkFootprintWhenIdle`: delete all code, a full collection, free memory released);
 * it blocks the process about 45–67 ms. So the drop is asked for, and one turn of the event loop
 * awaited, before the gateway listens: no request ever waits for it (until session 14 it ran right
 * after "listening", and a request arriving then waited that long). The code compiled while
 * listening starts and the first requests compile their functions again, as a fresh process's do.
 * With `MIMALLOC_PURGE_DELAY=-1` (src/runtime/bun/start-env.ts) the allocator keeps what it freed,
 * so the idle RSS figures above (Bun's default setting) are not what `codex-lb serve` shows.
 *
 * @module
 */

/**
 * Asks the engine to drop start-up's compiled code and collect (`Bun.shrink()`), once, and resolves
 * after one turn of the event loop, by when the engine has done it.
 */
export async function shedStartupCode(): Promise<void> {
  Bun.shrink();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
