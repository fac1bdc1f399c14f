/**
 * The Bun seam for the number of upstream requests `fetch` runs at once. Bun's HTTP client reads
 * `BUN_CONFIG_MAX_HTTP_REQUESTS` (default 256) once, when the process starts; changing
 * `process.env` later changes nothing, so past 256 concurrent streams every further upstream
 * request would wait in Bun's own queue. {@link applyFetchLimit} therefore re-executes the same
 * program in the same process (`execve`: same pid, same arguments, same environment plus the
 * variable) before anything else happened, in `bun src/cli/main.ts` and in the compiled binary.
 *
 * @module
 */

const VAR = "BUN_CONFIG_MAX_HTTP_REQUESTS";

/** What {@link applyFetchLimit} did. */
export type FetchLimitOutcome =
  | { readonly kind: "in-force"; readonly limit: number }
  | { readonly kind: "operator"; readonly limit: string }
  | { readonly kind: "unsupported" };

/** True when this program is a `bun build --compile` executable (its code lives in `/$bunfs/`). */
function compiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || /^[A-Z]:\\~BUN\\/.test(Bun.main);
}

/**
 * Makes `limit` the number of requests Bun's `fetch` runs at once. Returns when it is in force (or
 * when the operator set the variable themselves, which wins, or when the platform cannot re-execute);
 * otherwise re-executes the process with the variable set and never returns.
 */
export function applyFetchLimit(limit: number): FetchLimitOutcome {
  const current = process.env[VAR];
  if (current === String(limit)) return { kind: "in-force", limit };
  if (current !== undefined && current !== "") return { kind: "operator", limit: current };
  const execve = (
    process as { execve?: (file: string, args: string[], env: Record<string, string>) => never }
  ).execve;
  if (typeof execve !== "function") return { kind: "unsupported" };
  // A compiled executable's argv[1] is its embedded entry point; `bun file.ts` keeps its runtime flags.
  const args = compiled()
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env[VAR] = String(limit);
  execve.call(process, process.execPath, args, env);
  return { kind: "unsupported" };
}
