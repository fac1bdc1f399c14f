/**
 * The Bun seam for what the runtime reads from the environment once, when the process starts, so
 * that setting `process.env` later changes nothing:
 * - `BUN_CONFIG_MAX_HTTP_REQUESTS`: the number of upstream requests Bun's `fetch` runs at once
 *   (default 256; past it every further upstream request would wait in Bun's own queue);
 * - `MIMALLOC_PURGE_DELAY` ({@link ALLOCATOR_ENV}): when Bun's allocator (mimalloc) hands freed
 *   pages back to the kernel. By default within milliseconds, on its `mi-scavenger` thread, and the
 *   next request's buffers fault them in again: under load about a tenth of the gateway's CPU on
 *   that thread alone, plus the page faults. `-1` keeps freed memory for reuse (the peak RSS is the
 *   same; after a burst the process stays near it instead of shrinking back).
 * {@link applyStartEnv} therefore re-executes the same program in the same process (`execve`: same
 * pid, same arguments, same environment plus what is missing) before anything else happened, in
 * `bun src/cli/main.ts` and in the compiled binary. A value the operator set wins.
 *
 * @module
 */

const FETCH_VAR = "BUN_CONFIG_MAX_HTTP_REQUESTS";
const ALLOCATOR_VAR = "MIMALLOC_PURGE_DELAY";

/** The allocator setting the gateway runs with unless the operator set the variable (the benches' processes too). */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = { [ALLOCATOR_VAR]: "-1" };

/** What {@link applyStartEnv} found for one variable. */
export type StartEnvOutcome =
  | { readonly kind: "in-force"; readonly value: string }
  | { readonly kind: "operator"; readonly value: string }
  | { readonly kind: "unsupported" };

/** What {@link applyStartEnv} did, per variable. */
export interface StartEnv {
  readonly fetchLimit: StartEnvOutcome;
  readonly allocator: StartEnvOutcome;
}

/** True when this program is a `bun build --compile` executable (its code lives in `/$bunfs/`). */
function compiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || /^[A-Z]:\\~BUN\\/.test(Bun.main);
}

/** `env` with {@link ALLOCATOR_ENV} added where `env` does not set it (for the processes a bench starts). */
export function withAllocatorEnv(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const out = { ...env };
  for (const [k, v] of Object.entries(ALLOCATOR_ENV)) if (!out[k]) out[k] = v;
  return out;
}

/**
 * Makes `fetchLimit` the number of requests Bun's `fetch` runs at once and starts the allocator with
 * {@link ALLOCATOR_ENV}. Returns when both are in force (or set otherwise by the operator, who wins,
 * or when the platform cannot re-execute); otherwise re-executes the process with the missing
 * variables set and never returns.
 */
export function applyStartEnv(fetchLimit: number): StartEnv {
  const wanted: Record<string, string> = { [FETCH_VAR]: String(fetchLimit), ...ALLOCATOR_ENV };
  const missing = Object.keys(wanted).filter((k) => !process.env[k]);
  const outcome = (k: string, reexecuted: boolean): StartEnvOutcome => {
    const current = process.env[k];
    if (!current) return reexecuted ? { kind: "in-force", value: wanted[k]! } : { kind: "unsupported" };
    return current === wanted[k]
      ? { kind: "in-force", value: current }
      : { kind: "operator", value: current };
  };
  const result = (reexecuted: boolean): StartEnv => ({
    fetchLimit: outcome(FETCH_VAR, reexecuted),
    allocator: outcome(ALLOCATOR_VAR, reexecuted),
  });
  if (missing.length === 0) return result(true);
  const execve = (
    process as { execve?: (file: string, args: string[], env: Record<string, string>) => never }
  ).execve;
  if (typeof execve !== "function") return result(false);
  // A compiled executable's argv[1] is its embedded entry point; `bun file.ts` keeps its runtime flags.
  const args = compiled()
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const k of missing) env[k] = wanted[k]!;
  execve.call(process, process.execPath, args, env);
  return result(false);
}
