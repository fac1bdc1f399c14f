/**
 * Strict admin bodies: Elysia normalises a request body by silently dropping fields its schema does
 * not know, so a typo (`routingStategy`, `PATCH /api/api-keys/{id}` with `nmae`) would be a 200 that
 * changed nothing. The app's `transform` hook asks {@link unknownField} first and answers a 400
 * `validation_error` naming the field, at any depth (`limits.0.maxValu`). A route without a body
 * schema takes no fields at all.
 *
 * @module
 */

/** The parts of a TypeBox/JSON schema this check reads. */
export interface BodySchema {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, BodySchema>>;
  readonly items?: BodySchema;
  readonly anyOf?: readonly BodySchema[];
  readonly additionalProperties?: unknown;
}

/** No fields at all: the schema of a route that takes no body. */
export const NO_BODY: BodySchema = { type: "object", properties: {} };

/** A JSON object (not null, not an array). */
export const isJsonObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** The object branch of a schema (itself, or the one object member of a union), if any. */
function objectBranch(schema: BodySchema): BodySchema | null {
  if (schema.properties) return schema;
  const objects = (schema.anyOf ?? []).filter((s) => s.properties);
  return objects.length === 1 ? objects[0]! : null;
}

function arrayBranch(schema: BodySchema): BodySchema | null {
  if (schema.items) return schema;
  const arrays = (schema.anyOf ?? []).filter((s) => s.items);
  return arrays.length === 1 ? arrays[0]! : null;
}

/**
 * The first field of `value` its schema does not declare, as a dotted path with the fields that
 * were allowed there; null when there is none. Maps (`additionalProperties` a schema) are open.
 */
export function unknownField(
  value: unknown,
  schema: BodySchema,
  path = "",
): { field: string; allowed: readonly string[] } | null {
  if (isJsonObject(value)) {
    const obj = objectBranch(schema);
    if (!obj?.properties) return null;
    const allowed = Object.keys(obj.properties);
    for (const [k, v] of Object.entries(value)) {
      const sub = obj.properties[k];
      const field = path ? `${path}.${k}` : k;
      if (!sub) {
        if (typeof obj.additionalProperties === "object") continue;
        return { field, allowed };
      }
      const inner = unknownField(v, sub, field);
      if (inner) return inner;
    }
    return null;
  }
  if (Array.isArray(value)) {
    const arr = arrayBranch(schema);
    if (!arr?.items) return null;
    for (let i = 0; i < value.length; i++) {
      const inner = unknownField(value[i], arr.items, path ? `${path}.${i}` : String(i));
      if (inner) return inner;
    }
  }
  return null;
}
