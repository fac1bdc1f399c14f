/**
 * Queries compiled once per database dialect: the hot path (API-key limit reservations) builds
 * each query with Kysely the first time only, then runs the cached SQL with new parameters — the
 * query builder's nodes, freezing and compiling were most of a reservation's CPU.
 *
 * @module
 */
import { type Compilable, CompiledQuery } from "kysely";

type Slot = { readonly arg: number } | { readonly value: unknown };
interface Compiled {
  readonly sql: string;
  readonly slots: readonly Slot[];
}

const byAdapter = new WeakMap<object, Map<string, Compiled>>();

/**
 * `build(args)` compiled once per dialect and `shape` (the same shape must always build the same
 * SQL text from `arity` arguments), then bound to `args`. Arguments are traced through placeholder
 * values, so a query whose SQL text depended on an argument's value would be wrong: pass such
 * values in `shape`.
 */
export function precompiled(
  db: { getExecutor(): { readonly adapter: object } },
  shape: string,
  args: readonly unknown[],
  build: (args: readonly unknown[]) => Compilable,
): CompiledQuery {
  const q = precompiledText(db, shape, args, build);
  return CompiledQuery.raw(q.sql, [...q.parameters]);
}

/** SQL text and its parameters. */
export interface SqlText {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/** {@link precompiled} as plain SQL text and parameters (for synchronous statements: nothing frozen). */
export function precompiledText(
  db: { getExecutor(): { readonly adapter: object } },
  shape: string,
  args: readonly unknown[],
  build: (args: readonly unknown[]) => Compilable,
): SqlText {
  const adapter = db.getExecutor().adapter;
  let cache = byAdapter.get(adapter);
  if (!cache) {
    cache = new Map();
    byAdapter.set(adapter, cache);
  }
  const key = `${shape}#${args.length}`;
  let c = cache.get(key);
  if (!c) {
    const marks = args.map((_, i) => `\u0000codex-lb-arg-${i}\u0000`);
    const q = build(marks).compile();
    c = {
      sql: q.sql,
      slots: q.parameters.map((v) => {
        const i = typeof v === "string" ? marks.indexOf(v) : -1;
        return i >= 0 ? { arg: i } : { value: v };
      }),
    };
    cache.set(key, c);
  }
  const params = c.slots.map((s) => ("arg" in s ? args[s.arg] : s.value));
  return { sql: c.sql, parameters: params };
}
