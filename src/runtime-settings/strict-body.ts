/**
 * Elysia normalises request bodies by silently dropping fields the schema does not know, so a typo
 * (`routingStategy`) would be a 200 that changed nothing. This `transform` hook refuses them
 * first with a 400 `validation_error` naming the field.
 *
 * @module
 */
import { GatewayError } from "../core/errors.ts";

/** A route `transform` hook that refuses body fields outside `allowed`. */
export function rejectUnknownFields(allowed: readonly string[]) {
  const known = new Set(allowed);
  return ({ body }: { body: unknown }): void => {
    if (body === undefined) return;
    if (body === null || typeof body !== "object" || Array.isArray(body))
      throw new GatewayError("validation_error", "Invalid body: expected a JSON object");
    for (const k of Object.keys(body)) {
      if (!known.has(k)) {
        throw new GatewayError(
          "validation_error",
          `Invalid body field '${k}': unknown field (allowed: ${allowed.join(", ")})`,
          { param: k },
        );
      }
    }
  };
}
