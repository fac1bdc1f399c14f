/**
 * The benchmark scripts' numeric knobs (`PAIR_ROUNDS=4`, `BENCH_STREAMS=300`, …): one reader, so a
 * mistyped value stops the script with one line naming the variable (exit 2), as the gateway's own
 * settings do, instead of a NaN that runs a meaningless measurement.
 *
 * @module
 */

/** `process.env[name]` as a finite number ≥ 0, or `fallback` when unset or empty. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`${name}: expected a number ≥ 0, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}
