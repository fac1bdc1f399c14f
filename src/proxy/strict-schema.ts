/**
 * Strict-mode JSON Schema rules, checked before anything goes upstream so the client gets a clear
 * 400 instead of an opaque upstream failure: every node has a `type` (unless it is a combinator or
 * a `$ref`), every object has `additionalProperties: false`, and every property is `required`.
 * The first violation wins.
 *
 * @module
 */

export interface StrictViolation {
  /** Where in the schema, as keys from the root (`["properties", "city"]`). */
  readonly path: readonly (string | number)[];
  readonly reason: string;
}

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => !!v && typeof v === "object" && !Array.isArray(v);

/** The first strict-mode violation in `schema`, or null when it follows the rules. */
export function strictViolation(schema: unknown): StrictViolation | null {
  return visit(schema, []);
}

function visit(node: unknown, path: (string | number)[]): StrictViolation | null {
  if (!isNode(node)) return { path, reason: "schema must be a JSON object" };
  for (const comb of ["anyOf", "oneOf", "allOf"] as const) {
    const list = node[comb];
    if (Array.isArray(list)) {
      for (let i = 0; i < list.length; i++) {
        const v = visit(list[i], [...path, comb, i]);
        if (v) return v;
      }
    }
  }
  for (const defs of ["$defs", "definitions"] as const) {
    const d = node[defs];
    if (isNode(d)) {
      for (const [k, sub] of Object.entries(d)) {
        const v = visit(sub, [...path, defs, k]);
        if (v) return v;
      }
    }
  }
  const combinator = ["anyOf", "oneOf", "allOf"].some((k) => Array.isArray(node[k]));
  if (!combinator && typeof node.$ref !== "string" && !("type" in node)) {
    return { path, reason: "schema must have a 'type' key" };
  }
  const types = Array.isArray(node.type) ? node.type : [node.type];
  const props = isNode(node.properties) ? node.properties : null;
  if (types.includes("object") || props) {
    if (node.additionalProperties !== false) {
      return { path, reason: "'additionalProperties' is required to be supplied and to be false" };
    }
    const keys = Object.keys(props ?? {});
    const required = Array.isArray(node.required) ? node.required : [];
    const missing = keys.filter((k) => !required.includes(k));
    if (missing.length > 0 || (keys.length > 0 && !Array.isArray(node.required))) {
      return {
        path,
        reason: `'required' is required to be supplied and to be an array including every key in properties. Missing ${missing.map((m) => `'${m}'`).join(", ")}`,
      };
    }
    for (const [k, sub] of Object.entries(props ?? {})) {
      const v = visit(sub, [...path, "properties", k]);
      if (v) return v;
    }
  }
  if (node.items !== undefined && !Array.isArray(node.items)) {
    const v = visit(node.items, [...path, "items"]);
    if (v) return v;
  }
  return null;
}

/** `()` or `('properties', 'x')`, the way OpenAI names a schema location. */
export function renderContext(path: readonly (string | number)[]): string {
  if (path.length === 0) return "()";
  const parts = path.map((p) => (typeof p === "number" ? String(p) : `'${p}'`));
  return `(${parts.join(", ")}${parts.length === 1 ? "," : ""})`;
}
