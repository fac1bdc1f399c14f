/**
 * Queries compiled once per database dialect: the hot path (API-key limit reservations) builds
 * each query with Kysely the first time only, then runs the cached SQL with new parameters — the
 * query builder's nodes, freezing and compiling were most of a reservation's CPU.
 *
 * @module
 */
import { type Compilable, CompiledQuery } from "kysely";

interface Compiled {
  readonly sql: string;
  /** Per parameter: the index of the argument it takes, or -1 for a constant of the query. */
  readonly args: readonly number[];
  /** Per parameter: the constant (where `args` says -1). */
  readonly constants: readonly unknown[];
}

/** What queries are built on: a Kysely instance or transaction. */
type Db = { getExecutor(): { readonly adapter: object } };

/** Per adapter, per shape: the compiled query by arity. */
const byAdapter = new WeakMap<object, Map<string, Compiled[]>>();

/**
 * `build(args)` compiled once per dialect and `shape` (the same shape must always build the same
 * SQL text from `arity` arguments), then bound to `args`. Arguments are traced through placeholder
 * values, so a query whose SQL text depended on an argument's value would be wrong: pass such
 * values in `shape`.
 */
export function precompiled<D extends Db>(
  db: D,
  shape: string,
  args: readonly unknown[],
  build: (args: readonly unknown[], db: D) => Compilable,
): CompiledQuery {
  const q = precompiledText(db, shape, args, build);
  return CompiledQuery.raw(q.sql, [...q.parameters]);
}

/** SQL text and its parameters. */
export interface SqlText {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/**
 * {@link precompiled} as plain SQL text and parameters (for synchronous statements: nothing frozen).
 * `build` is given `db` too: a hot path passes a function made once, not a closure per call.
 */
export function precompiledText<D extends Db>(
  db: D,
  shape: string,
  args: readonly unknown[],
  build: (args: readonly unknown[], db: D) => Compilable,
): SqlText {
  const adapter = db.getExecutor().adapter;
  let cache = byAdapter.get(adapter);
  if (!cache) {
    cache = new Map();
    byAdapter.set(adapter, cache);
  }
  let byArity = cache.get(shape);
  if (!byArity) {
    byArity = [];
    cache.set(shape, byArity);
  }
  let c = byArity[args.length];
  if (!c) {
    const marks = args.map((_, i) => `\u0000codex-lb-arg-${i}\u0000`);
    const q = build(marks, db).compile();
    const argOf = q.parameters.map((v) => (typeof v === "string" ? marks.indexOf(v) : -1));
    c = { sql: q.sql, args: argOf, constants: q.parameters.map((v, i) => (argOf[i]! >= 0 ? undefined : v)) };
    byArity[args.length] = c;
  }
  const { sql, args: argOf, constants } = c;
  const params: unknown[] = new Array(argOf.length);
  for (let i = 0; i < argOf.length; i++) {
    const a = argOf[i]!;
    params[i] = a >= 0 ? args[a] : constants[i];
  }
  return { sql, parameters: params };
}
