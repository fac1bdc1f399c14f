/**
 * Preloaded into a bench gateway by `scripts/bench-cells.ts` (`bun --preload`): on each SIGUSR2 it
 * counts the JS heap's cells by type (`heapStats().objectTypeCounts` of `bun:jsc`) and writes one
 * `CELLS <json>` line to stderr: the counts, and whether a collection ran since the previous
 * signal. Between two collections every cell allocated is still counted (nothing is swept yet), so
 * the difference of two snapshots with no collection between them is what was allocated.
 *
 * @module
 */
import { heapStats } from "bun:jsc";

/** Cleared by the first collection after the snapshot that made it (a young, unreachable object). */
let sentinel = new WeakRef({});

process.on("SIGUSR2", () => {
  const collected = sentinel.deref() === undefined;
  const counts = heapStats().objectTypeCounts;
  sentinel = new WeakRef({});
  process.stderr.write(`CELLS ${JSON.stringify({ collected, counts })}\n`);
});
