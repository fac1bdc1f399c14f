/**
 * Reading loosely typed values (JSON from the upstream, tokens' claims, rows of another program's
 * database) into plain strings and numbers: one copy of each rule, used everywhere such values are read.
 *
 * @module
 */

/** A string with something besides white space in it, as given (not trimmed); else null. */
export const str = (v: unknown): string | null => (typeof v === "string" && v.trim() !== "" ? v : null);

/** A string with something besides white space in it, trimmed; else null. */
export const trimmed = (v: unknown): string | null => str(v)?.trim() ?? null;

/** A finite number (a JSON number); else null. Strings are not numbers here. */
export const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** A decimal number written out: `12`, `-3.5`, `.5`, `1e3` (no hex, no `Infinity`, no blanks). */
const DECIMAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * A finite number, also when written as a decimal string (surrounding blanks ignored) or a bigint:
 * for values another program stored or sent, where a number may arrive as text; else null.
 */
export const numeric = (v: unknown): number | null => {
  if (typeof v === "bigint") return num(Number(v));
  if (typeof v === "string") {
    const t = v.trim();
    return DECIMAL.test(t) ? num(Number(t)) : null;
  }
  return num(v);
};
