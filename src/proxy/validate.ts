/**
 * Checks of a Responses-shaped request body: each problem is a 400 in the OpenAI envelope that
 * names the offending field in `param`. Strict function schemas and strict `text.format` schemas
 * are checked here too, before any upstream call.
 *
 * @module
 */
import { GatewayError } from "../core/errors.ts";
import { renderContext, strictViolation } from "./strict-schema.ts";

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => !!v && typeof v === "object" && !Array.isArray(v);

/** A 400 `invalid_request_error` naming `param`. */
export function badField(param: string, message: string): GatewayError {
  return new GatewayError("invalid_request_error", message, { param });
}

/** Parses the raw body text as a JSON object, or throws a 400. */
export function parseBody(text: string): Json {
  if (text.trim() === "")
    throw new GatewayError("invalid_json", "Request body is empty; a JSON object is required");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_json");
  }
  if (!isObject(v)) throw new GatewayError("invalid_request_error", "Request body must be a JSON object");
  return v;
}

/** `model`: a non-empty string. */
export function requireModel(body: Json): string {
  if (typeof body.model !== "string" || body.model.trim() === "") {
    throw badField("model", "'model' is required and must be a non-empty string");
  }
  return body.model;
}

export function optionalBoolean(body: Json, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badField(key, `'${key}' must be a boolean`);
  return v;
}

/** Checks the fields of a Responses request that the gateway reads or rewrites. */
export function validateResponsesBody(body: Json): void {
  requireModel(body);
  optionalBoolean(body, "stream");
  const input = body.input;
  if (input === undefined || input === null) {
    if (typeof body.previous_response_id !== "string") {
      throw badField("input", "'input' is required (a string or an array of input items)");
    }
  } else if (typeof input !== "string" && !Array.isArray(input)) {
    throw badField("input", "'input' must be a string or an array of input items");
  } else if (Array.isArray(input)) {
    input.forEach((item, i) => {
      if (!isObject(item)) throw badField(`input.${i}`, "each input item must be an object");
    });
  }
  if (
    body.instructions !== undefined &&
    body.instructions !== null &&
    typeof body.instructions !== "string"
  ) {
    throw badField("instructions", "'instructions' must be a string");
  }
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw badField("tools", "'tools' must be an array");
    body.tools.forEach((t, i) => {
      if (!isObject(t)) throw badField(`tools[${i}]`, "each tool must be an object");
    });
  }
  const choice = body.tool_choice;
  if (choice !== undefined && choice !== null && typeof choice !== "string" && !isObject(choice)) {
    throw badField("tool_choice", "'tool_choice' must be a string or an object");
  }
  for (const key of ["reasoning", "text"]) {
    const v = body[key];
    if (v !== undefined && v !== null && !isObject(v)) throw badField(key, `'${key}' must be an object`);
  }
  if (body.conversation != null && body.previous_response_id != null) {
    throw badField("previous_response_id", "'conversation' and 'previous_response_id' cannot both be set");
  }
}

/** Throws 400 `invalid_function_parameters` for a strict function tool whose schema breaks the rules. */
export function checkStrictTool(name: unknown, parameters: unknown, strict: unknown, param: string): void {
  if (strict !== true) return;
  const v = strictViolation(parameters ?? {});
  if (!v) return;
  throw new GatewayError(
    "invalid_function_parameters",
    `Invalid schema for function '${typeof name === "string" ? name : "function"}': In context=${renderContext(v.path)}, ${v.reason}.`,
    { param },
  );
}

/** Strict checks of every function tool of a Responses request (`tools[N].parameters`). */
export function checkResponsesTools(body: Json): void {
  if (!Array.isArray(body.tools)) return;
  body.tools.forEach((t, i) => {
    if (isObject(t)) checkStrictTool(t.name, t.parameters, t.strict, `tools[${i}].parameters`);
  });
}

/** Strict check of a `text.format` JSON schema (`invalid_json_schema`). */
export function checkTextFormat(body: Json, param = "text.format.schema"): void {
  const text = body.text;
  if (!isObject(text) || !isObject(text.format)) return;
  const f = text.format;
  if (f.type !== "json_schema" || f.strict !== true) return;
  const v = strictViolation(f.schema ?? {});
  if (!v) return;
  throw new GatewayError(
    "invalid_json_schema",
    `Invalid schema for response_format '${typeof f.name === "string" ? f.name : "response_format"}': In context=${renderContext(v.path)}, ${v.reason}.`,
    { param },
  );
}
