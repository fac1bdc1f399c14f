/**
 * The app's error handler: turns anything thrown in a route into a JSON error in the envelope of
 * the route's family. Elysia's validation dump is never shown; the offending field is named.
 *
 * @module
 */

import { guardErrorOf } from "../core/body-guard.ts";
import { envelopeFor, errorResponse, GatewayError } from "../core/errors.ts";
import type { Logger } from "../core/logging.ts";

interface SchemaLike {
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly anyOf?: readonly SchemaLike[];
}

interface ValidationLike {
  readonly all?: readonly { path?: string; message?: string; summary?: string; schema?: SchemaLike }[];
  readonly valueError?: { path?: string; message?: string; schema?: SchemaLike };
}

/** The values a schema allows when it is a closed set (a literal, an enum, a union of literals). */
export function allowedValues(schema: SchemaLike | undefined): unknown[] | null {
  if (!schema) return null;
  if (schema.const !== undefined) return [schema.const];
  if (Array.isArray(schema.enum)) return [...schema.enum];
  if (Array.isArray(schema.anyOf) && schema.anyOf.length > 0) {
    const all: unknown[] = [];
    for (const s of schema.anyOf) {
      const v = allowedValues(s);
      if (!v) return null;
      all.push(...v);
    }
    return all;
  }
  return null;
}

/** `/messages/0/role` → `messages.0.role`. */
function fieldOf(path: string | undefined): string | null {
  if (!path) return null;
  const f = path.replace(/^\//, "").replace(/\//g, ".");
  return f === "" ? null : f;
}

/** The request's path, or "/" when its URL cannot be parsed (never throws). */
export function pathOf(request: Request): string {
  const url = URL.parse(request.url);
  return url ? url.pathname : "/";
}

export function validationToGatewayError(e: ValidationLike, where: string): GatewayError {
  const first = e.valueError ?? e.all?.[0];
  const field = fieldOf(first?.path);
  const allowed = allowedValues(first?.schema);
  const what = allowed
    ? `must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`
    : (first?.message ?? "is invalid");
  const message = field ? `Invalid ${where} field '${field}': ${what}` : `Invalid ${where}: ${what}`;
  return new GatewayError("validation_error", message, { param: field });
}

/**
 * A converted query or path number out of range (`limit=1.5`, `offset=-1`): Elysia reports the value
 * alone, without its name; the query parameter holding that value names it.
 */
function propertyError(e: ValidationLike & { value?: unknown }, request: Request): GatewayError {
  const message = e.valueError?.message ?? "is invalid";
  const url = URL.parse(request.url);
  const names = url
    ? [...url.searchParams].filter(([, v]) => v.trim() !== "" && Number(v) === e.value).map(([k]) => k)
    : [];
  if (names.length === 1)
    return new GatewayError("validation_error", `Invalid query field '${names[0]}': ${message}`, {
      param: names[0],
    });
  return new GatewayError(
    "validation_error",
    `Invalid parameter value ${JSON.stringify(e.value)}: ${message}`,
    {
      param: null,
    },
  );
}

export function renderError(opts: {
  code: string | number;
  error: unknown;
  request: Request;
  requestId: string;
  log: Logger;
}): Response {
  const { code, error, request, requestId, log } = opts;
  const path = pathOf(request);
  const envelope = envelopeFor(path);
  let gw: GatewayError;
  const guardError = guardErrorOf(error);
  if (guardError) gw = guardError;
  else if (code === "VALIDATION") {
    const type = (error as { type?: string }).type;
    if (type === "property") gw = propertyError(error as ValidationLike & { value?: unknown }, request);
    else {
      const where = type === "query" ? "query" : type === "params" ? "path" : "body";
      gw = validationToGatewayError(error as ValidationLike, where);
    }
  } else if (code === "NOT_FOUND")
    gw = new GatewayError("not_found", `No route for ${request.method} ${path}`);
  else if (code === "PARSE") gw = new GatewayError("invalid_json");
  else if (code === "INVALID_COOKIE_SIGNATURE") gw = new GatewayError("authentication_required");
  else {
    log.error(
      {
        requestId,
        err: error instanceof Error ? { message: error.message, stack: error.stack } : String(error),
        path,
      },
      "unhandled error",
    );
    gw = new GatewayError("server_error");
  }
  // OpenAI clients expect `invalid_request_error` as the code of a malformed body.
  if (envelope === "openai" && gw.code === "validation_error") {
    gw = new GatewayError("invalid_request_error", gw.message, gw.extra);
  }
  return errorResponse(gw, envelope, requestId);
}
