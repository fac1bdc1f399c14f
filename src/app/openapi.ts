/**
 * Turns the document generated from the routes (`openapi-document.ts`, with the mapping code of
 * `@elysiajs/swagger`) into a valid OpenAPI 3.1 document (0 errors from
 * @apidevtools/swagger-parser, tests/app/openapi-valid.test.ts):
 *
 * - `openapi: 3.1.0` (TypeBox emits JSON Schema 2020-12 keywords such as `const`, valid in 3.1);
 * - every response gets its `description`, and one content type (JSON, unless the route said
 *   otherwise) instead of the same schema under three;
 * - the security schemes (admin session cookie, gateway API key, metrics token) and, per operation,
 *   the one its surface needs (`surfaceOf`, the same table admission uses);
 * - the error responses every operation of a surface can give (400, 401, 403, 413, 415, 429, 500 or
 *   their OpenAI-envelope twins), as shared components;
 * - a description for every operation (the route's own, else {@link descriptions}) and an example
 *   of its success answer (the route's own, else one built from the schema).
 *
 * @module
 */
import { SESSION_COOKIE } from "../access/admin-auth/sessions.ts";
import { surfaceOf } from "../core/surface.ts";
import { proxyDocs } from "./openapi-proxy.ts";

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is arbitrary JSON.
type Json = any;

/** Descriptions of operations whose route does not carry one (`METHOD /path`). */
export const descriptions: Readonly<Record<string, string>> = {
  "GET /api/plugins":
    "The plugins loaded (built-in first, then `CODEX_LB_PLUGINS`), their source, and for each hook the handlers in the order they run.",
  "GET /api/settings":
    "The runtime settings in force: stored overrides over the defaults from the environment, with the version to send back when changing them.",
  "PUT /api/settings":
    "Changes some runtime settings. Send the `version` you read: a concurrent change answers 409 `settings_conflict` and nothing is applied.",
  "GET /api/sticky-sessions":
    "Sticky bindings (prompt cache key, session header, previous response) and the account each is bound to, most recently used first; `limit`/`offset` paging.",
  "DELETE /api/sticky-sessions/{key}":
    "Removes one sticky binding; the next request with that key is routed by the strategy and bound again.",
  "PATCH /api/accounts/{id}":
    "Sets the account's routing policy: `normal`, `burn_first` (used before others) or `preserve` (used last).",
  "GET /api/accounts/{id}":
    "One account: identity, status, quota windows, token expiry and live health. Never a token.",
  "DELETE /api/accounts/{id}":
    "Deletes the account, its tokens, status events, usage snapshots and sticky bindings; its request-log rows stay, without the account.",
  "GET /api/accounts":
    "Every account, oldest first, with its status, latest quota windows, token expiry and health (usable, backoff, streams in flight).",
  "POST /api/accounts/import":
    "Adds the account of a Codex CLI `auth.json`, or updates the tokens of the account it already is (same ChatGPT account and user).",
  "POST /api/accounts/{id}/pause":
    "Pauses the account: it serves nothing until reactivated. Refused (409) for an account that needs a new login.",
  "POST /api/accounts/{id}/reactivate":
    "Puts a paused, rate-limited or deactivated account back in rotation; an account that needs a new login answers 409 `reauth_required`.",
  "GET /api/accounts/{id}/events":
    "The account's status changes (who decided, from which status to which, why), newest first; `limit`/`offset` paging.",
  "POST /api/accounts/{id}/export/auth":
    "The account's live tokens as a Codex CLI `auth.json` and as an OpenCode auth entry. Audited; the answer is never cached.",
  "POST /api/oauth/start":
    "Starts a login: `browser` answers the authorization URL to open (PKCE, callback on the local callback port); `device` answers a user code and verification URL.",
  "GET /api/oauth/status": "Whether a login flow is pending, done (with the account) or failed (with why).",
  "POST /api/oauth/manual-callback":
    "Finishes a browser login when the callback could not reach this machine: paste the full redirect URL from the browser's address bar.",
  "POST /backend-api/codex/responses":
    "The Codex CLI's endpoint: a Responses request, answered as server-sent events passed through from the chosen account.",
  "GET /backend-api/codex/responses":
    "WebSocket upgrade for the Codex CLI: each `response.create` message starts a turn on an account; events come back as text frames.",
  "POST /v1/responses":
    "OpenAI Responses API. `stream: true` answers server-sent events; otherwise one JSON response when the answer is complete.",
  "GET /v1/responses":
    "WebSocket upgrade for the OpenAI Responses API: one `response.create` message per turn.",
  "POST /backend-api/codex/responses/compact":
    "Compacts a conversation history (Codex CLI shape) through the upstream; the answer is one `response.compaction` item.",
  "POST /v1/responses/compact":
    'Compacts a conversation history (OpenAI shape): answers `{object: "response.compaction", output: [item]}`.',
  "POST /v1/chat/completions":
    "OpenAI Chat Completions, translated to a Responses request and back; streams chunks with `stream: true`.",
  "GET /v1/models":
    "The models the upstream offers, as an OpenAI model list (cached for `CODEX_LB_MODELS_CACHE_SECONDS`).",
  "GET /v1/models/{id}": "One model of the list, or 404 in the OpenAI envelope.",
  "GET /backend-api/codex/models": "The upstream's model catalogue as the Codex CLI reads it.",
  "GET /api/request-logs":
    "Proxied requests, newest first: account, key, model, status, tokens, latency. Filters by account, model, status and time; `limit`/`offset` paging.",
  "GET /api/auth/session":
    "Whether this caller has admin access, whether a password and TOTP are set, whether the caller is local, and whether a bootstrap token is needed.",
  "POST /api/auth/login":
    "Checks the password (and the TOTP or a recovery code when TOTP is on) and sets the session cookie. Attempts are rate-limited per address.",
  "POST /api/auth/logout": "Ends this session and clears its cookie.",
  "POST /api/auth/password":
    "Without a password yet: sets the first one (from this machine, or with the bootstrap token). Otherwise changes it (needs a session and the current password) and ends every other session.",
  "POST /api/auth/totp/setup":
    "Makes a new TOTP secret and its otpauth:// URI; TOTP is on only after /api/auth/totp/confirm.",
  "POST /api/auth/totp/confirm":
    "Turns TOTP on with a current code and answers ten one-time recovery codes (shown once).",
  "POST /api/auth/totp/disable": "Turns TOTP off; needs a current code or an unused recovery code.",
  "GET /api/api-keys":
    "Every gateway API key (prefix only, never the key) with its limits and their current usage.",
  "POST /api/api-keys":
    "Creates an API key with optional expiry, allowed models and limits (requests, tokens or cost per window). The key is in this answer only.",
  "GET /api/api-keys/{id}": "One API key with its limits and their current usage.",
  "PATCH /api/api-keys/{id}": "Changes the given fields; `limits`, when given, replaces the whole list.",
  "DELETE /api/api-keys/{id}":
    "Deletes the key; requests with it are refused from now on. Its request-log rows stay.",
  "POST /api/api-keys/{id}/regenerate":
    "Gives the key a new secret (answered once); the old one stops working at once.",
  "GET /v1/usage":
    "For the API key of the request: its usage and limits per window, and the pool's quota windows.",
  "GET /api/settings/access": "Whether proxy clients need an API key (`apiKeyAuthEnabled`).",
  "PUT /api/settings/access": "Turns API-key authentication of proxy clients on or off.",
  "GET /api/audit-logs":
    "Admin changes and logins (who, from which address, what), newest first; `limit`/`offset` paging.",
  "GET /api/firewall":
    "The addresses and ranges allowed to use the proxy; an empty list allows every client.",
  "PUT /api/firewall": "Replaces the whole allowlist in one change.",
  "POST /api/firewall/entries": "Adds an address or CIDR range to the allowlist.",
  "DELETE /api/firewall/entries": "Removes an address or range from the allowlist.",
  "GET /api/replicas":
    "The gateways sharing this database (alive by heartbeat) and which one leads background work.",
  "GET /api/auth/sessions":
    "Open admin sessions (address, start, last use), newest first; the caller's own is marked.",
  "POST /api/auth/sessions/revoke-all": "Ends every admin session, the caller's included.",
  "GET /api/overview":
    "Accounts by status, today's requests, errors, tokens and cost: the dashboard's first screen.",
  "GET /api/usage/report":
    "Tokens and cost per day by model, account and API key, with time-to-first-token and tokens-per-second percentiles.",
};

const STATUS_TEXT: Readonly<Record<string, string>> = {
  "200": "OK",
  "201": "Created",
  "204": "No content",
  "101": "Switching protocols (WebSocket)",
  "302": "Redirect",
  "304": "Not modified",
  "400": "Invalid request: the error names the field and what is allowed",
  "401": "Authentication required or invalid",
  "403": "Not allowed (address, origin, model or permission)",
  "404": "Not found",
  "405": "Method not allowed",
  "409": "Conflict with the current state",
  "413": "Request body too large (`CODEX_LB_MAX_BODY_BYTES`)",
  "415": "Unsupported content type (JSON only)",
  "422": "Unprocessable",
  "429": "Rate limited: retry after `Retry-After` seconds",
  "500": "Internal error",
  "502": "The upstream failed",
  "503": "No usable account, or the service is unavailable",
  "504": "The upstream did not answer in time",
};

const adminError = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string", description: "A code of the error catalogue (`src/core/errors.ts`)" },
        message: { type: "string" },
        param: { type: ["string", "null"], description: "The offending field, for validation errors" },
      },
    },
  },
  example: { error: { code: "validation_error", message: "Invalid body field 'name': Expected string" } },
};

const openaiError = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["message", "type", "code"],
      properties: {
        message: { type: "string" },
        type: {
          type: "string",
          description: "`invalid_request_error`, `authentication_error`, `rate_limit_error`, …",
        },
        code: { type: ["string", "null"] },
        param: { type: ["string", "null"] },
      },
    },
  },
  example: {
    error: {
      message: "Invalid or missing API key",
      type: "authentication_error",
      code: "invalid_api_key",
      param: null,
    },
  },
};

/** Error answers every operation of a surface can give (beyond its own declared ones). */
const surfaceErrors: Readonly<Record<"admin" | "proxy" | "public", readonly string[]>> = {
  admin: ["400", "401", "403", "413", "415", "429", "500"],
  proxy: ["400", "401", "403", "413", "415", "429", "500", "502", "503", "504"],
  public: ["500"],
};

/** A plausible value for a schema: its example, default, const, first enum value, or a typed placeholder. */
export function exampleOf(schema: Json, depth = 0): Json {
  if (!schema || typeof schema !== "object" || depth > 8) return null;
  if (schema.example !== undefined) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const alt = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(alt)) {
    const notNull = alt.find((s: Json) => s?.type !== "null");
    return exampleOf(notNull ?? alt[0], depth + 1);
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = exampleOf(v, depth + 1);
      return out;
    }
    case "array":
      return schema.items ? [exampleOf(schema.items, depth + 1)] : [];
    case "integer":
      return schema.minimum ?? 0;
    case "number":
      return schema.minimum ?? 0;
    case "boolean":
      return true;
    case "string":
      return schema.format === "date-time" ? "2026-12-01T00:00:00.000Z" : "string";
    case "null":
      return null;
    default:
      return null;
  }
}

/** Removes what OpenAPI 3.1 schema objects may not carry (TypeBox-only keys) and fixes `null` types. */
function cleanSchema(s: Json): void {
  if (!s || typeof s !== "object") return;
  if (Array.isArray(s)) {
    for (const x of s) cleanSchema(x);
    return;
  }
  for (const k of ["csv", "httpUrl", "secret", "$id", "errorMessage"]) delete s[k];
  collapseNumeric(s);
  for (const v of Object.values(s)) cleanSchema(v);
}

/**
 * Elysia documents `t.Integer()` / `t.Numeric()` as "a numeric string or a number"
 * (`anyOf: [{type: "string", format: "integer"}, {type: "integer"}]`), its coercion of query and
 * form values; the value is a number (a query value is text on the wire anyway). Collapses that
 * to the number schema so every time (epoch ms) and count reads as an integer.
 */
function collapseNumeric(s: Json): void {
  const alt = s.anyOf;
  if (!Array.isArray(alt) || alt.length !== 2) return;
  const text = alt.find(
    (x: Json) => x?.type === "string" && (x.format === "integer" || x.format === "numeric"),
  );
  const num = alt.find((x: Json) => x?.type === "integer" || x?.type === "number");
  if (!text || !num) return;
  delete s.anyOf;
  const { description, ...rest } = num;
  Object.assign(s, rest);
  if (s.description === undefined && description !== undefined) s.description = description;
}

const METHODS = ["get", "put", "post", "delete", "patch", "options", "head"];

/** Normalises the generated document in place and returns it. */
export function normalizeOpenApi(doc: Json): Json {
  doc.openapi = "3.1.0";
  doc.info = {
    ...doc.info,
    description:
      "Account-pooling gateway for ChatGPT/Codex. `/v1/*` and `/backend-api/codex/*` are OpenAI- and Codex-compatible " +
      "proxy endpoints (errors in the OpenAI envelope); `/api/*` is the admin API (errors as `{error: {code, message}}`). " +
      "Every time in the admin API's answers is epoch milliseconds (`since`/`until` filters also take ISO 8601); " +
      "every paged listing takes `limit`/`offset` and answers `{items, total, limit, offset}`, newest first.",
  };
  doc.components ??= {};
  doc.components.securitySchemes = {
    adminSession: {
      type: "apiKey",
      in: "cookie",
      name: SESSION_COOKIE,
      description:
        "Admin session from POST /api/auth/login. Until an admin password is set, callers on this machine need none.",
    },
    apiKey: {
      type: "http",
      scheme: "bearer",
      description: "A gateway API key (`sk-clb-…`), needed by proxy clients when `apiKeyAuthEnabled` is on.",
    },
    metricsToken: {
      type: "http",
      scheme: "bearer",
      description: "`CODEX_LB_METRICS_TOKEN`, for a Prometheus scraper.",
    },
  };
  doc.components.schemas = {
    ...(doc.components.schemas ?? {}),
    AdminError: adminError,
    OpenAIError: openaiError,
  };
  const responses: Record<string, Json> = {};
  for (const [code, text] of Object.entries(STATUS_TEXT)) {
    if (Number(code) < 400) continue;
    responses[`Admin${code}`] = {
      description: text,
      content: { "application/json": { schema: { $ref: "#/components/schemas/AdminError" } } },
    };
    responses[`OpenAI${code}`] = {
      description: text,
      content: { "application/json": { schema: { $ref: "#/components/schemas/OpenAIError" } } },
    };
  }
  doc.components.responses = { ...(doc.components.responses ?? {}), ...responses };

  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    const surface = surfaceOf(path);
    const openai = path.startsWith("/v1") || path.startsWith("/backend-api");
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const key = `${method.toUpperCase()} ${path}`;
      op.description ??= descriptions[key];
      const extra = proxyDocs[key];
      if (extra) {
        if (extra.requestBody && !op.requestBody) op.requestBody = structuredClone(extra.requestBody);
        if (extra.parameters)
          op.parameters = [...(op.parameters ?? []), ...structuredClone(extra.parameters)];
        op.responses ??= {};
        for (const [code, r] of Object.entries<Json>(extra.responses ?? {}))
          if (!op.responses[code]?.content) op.responses[code] = structuredClone(r);
      }
      if (op.security === undefined) {
        op.security =
          surface === "proxy" ? [{ apiKey: [] }, {}] : surface === "admin" ? [{ adminSession: [] }, {}] : [];
      }
      op.responses ??= {};
      for (const [code, r] of Object.entries<Json>(op.responses)) {
        if (r.$ref) continue;
        // Elysia spreads a non-object schema (an array, a schema with options) into the response
        // object itself: move what is not a Response Object field into a JSON media type.
        const stray = Object.keys(r).filter(
          (k) => !["description", "headers", "content", "links"].includes(k),
        );
        if (stray.length > 0) {
          const moved: Record<string, Json> = {};
          for (const k of stray) {
            moved[k] = r[k];
            delete r[k];
          }
          const examples = moved.examples;
          delete moved.examples;
          if (!r.content && Object.keys(moved).length > 0)
            r.content = { "application/json": { schema: moved } };
          if (Array.isArray(examples) && r.content?.["application/json"])
            r.content["application/json"].example = examples[0];
        }
        r.description ??= STATUS_TEXT[code] ?? "Answer";
        if (r.content) {
          const types = Object.keys(r.content);
          // Elysia lists one schema under JSON, form and text; the answer is JSON.
          const same = JSON.stringify(r.content["application/json"]?.schema);
          if (types.includes("application/json"))
            for (const t of ["multipart/form-data", "text/plain"])
              if (JSON.stringify(r.content[t]?.schema) === same) delete r.content[t];
          for (const media of Object.values<Json>(r.content)) {
            cleanSchema(media.schema);
            if (Number(code) < 300 && media.example === undefined && media.examples === undefined)
              media.example = exampleOf(media.schema);
          }
        }
      }
      if (!Object.keys(op.responses).some((c) => Number(c) < 400))
        op.responses["200"] = { description: STATUS_TEXT["200"] };
      for (const code of surfaceErrors[surface])
        op.responses[code] ??= { $ref: `#/components/responses/${openai ? "OpenAI" : "Admin"}${code}` };
      if (op.requestBody?.content) {
        for (const media of Object.values<Json>(op.requestBody.content)) {
          cleanSchema(media.schema);
          if (media.example === undefined && media.examples === undefined)
            media.example = exampleOf(media.schema);
        }
      }
      for (const p of op.parameters ?? []) {
        cleanSchema(p.schema);
        p.description ??= p.schema?.description;
      }
    }
  }
  return doc;
}
