/**
 * The one schema of every operator setting. Each key maps to the environment variable
 * `CODEX_LB_<KEY_IN_SNAKE_CASE>`; the README's configuration table is checked against this object
 * (tests/settings/readme-table.test.ts), so adding a setting here is the only step needed.
 *
 * @module
 */
import { type Static, Type } from "@sinclair/typebox";

const Port = (def: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: def, description });
const Seconds = (def: number, description: string, minimum = 0) =>
  Type.Number({ minimum, default: def, description });
const HttpUrl = (def: string, description: string) =>
  Type.String({ pattern: "^https?://[^\\s]+$", default: def, description, httpUrl: true });
/** A comma-separated list in the environment; an array once parsed. */
const CsvList = (description: string) =>
  Type.Array(Type.String({ minLength: 1 }), { default: [], description, csv: true });

export const routingStrategies = [
  "capacity_weighted",
  "usage_weighted",
  "round_robin",
  "fill_first",
] as const;

/** Which client carries upstream HTTP requests (`CODEX_LB_UPSTREAM_CLIENT`; see `sendUpstream`). */
export const upstreamClients = ["auto", "fetch"] as const;

/** Forwarding headers an operator may name in `CODEX_LB_FORWARDED_HEADER`. */
export const forwardedHeaders = ["x-forwarded-for", "forwarded", "x-real-ip"] as const;

export const SettingsSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, default: "127.0.0.1", description: "Address the gateway listens on." }),
    port: Port(2455, "Port the gateway listens on (0 picks a free port)."),
    dataDir: Type.String({
      minLength: 1,
      default: "~/.codex-lb",
      description: "Folder for the database, the encryption key and other state; created with mode 0700.",
    }),
    databaseUrl: Type.String({
      default: "",
      description:
        "Store location: empty for `<dataDir>/store.db`, a path or `sqlite:PATH` for another SQLite file, `sqlite::memory:` for a throw-away store, `postgres://USER:PASSWORD@HOST:PORT/DB` for PostgreSQL (several replicas share one; see docs/deploy.md).",
    }),
    upstreamBaseUrl: HttpUrl(
      "https://chatgpt.com/backend-api",
      "ChatGPT backend base URL (Codex responses, usage, models).",
    ),
    authBaseUrl: HttpUrl(
      "https://auth.openai.com",
      "OpenAI auth server base URL (OAuth login and token refresh).",
    ),
    logLevel: Type.Union(
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l)),
      { default: "info", description: "Log level of the JSON log lines on stdout." },
    ),
    plugins: CsvList(
      "Comma-separated paths of extra plugin modules loaded at start-up, after the built-in ones.",
    ),
    oauthCallbackPort: Port(1455, "Port of the local OAuth callback listener used by browser login."),
    oauthCallbackHost: Type.String({
      minLength: 1,
      default: "127.0.0.1",
      description:
        "Address the OAuth callback listener binds (0.0.0.0 inside a container with a published port).",
    }),
    refreshMarginSeconds: Seconds(300, "Refresh an access token when it expires within this many seconds."),
    usageRefreshIntervalSeconds: Seconds(
      60,
      "How often each account's quota usage (`/wham/usage`) is fetched; fetches are staggered across accounts.",
      0.2,
    ),
    usageFetchTimeoutSeconds: Seconds(10, "Time allowed for one `/wham/usage` fetch.", 0.05),
    refreshTimeoutSeconds: Seconds(8, "Time allowed for one OAuth token refresh call.", 0.05),
    refreshFailureReuseSeconds: Seconds(
      5,
      "A failed token refresh is reported to later callers for this long instead of being re-sent.",
    ),
    refreshCheckIntervalSeconds: Seconds(
      60,
      "How often the background pass looks for idle accounts whose tokens need refreshing.",
      0.2,
    ),
    refreshMaxAgeDays: Seconds(8, "Refresh an account's tokens when its last refresh is older than this.", 0),
    streamIdleTimeoutSeconds: Seconds(
      300,
      "End a stream with `response.failed` when the upstream is silent this long.",
      1,
    ),
    upstreamConnectTimeoutSeconds: Seconds(
      30,
      "Time allowed for the upstream to answer with response headers.",
      1,
    ),
    responseOwnerTtlSeconds: Seconds(
      86_400,
      "How long the account that produced a response is remembered, so `previous_response_id` is routed to it.",
      60,
    ),
    sseKeepaliveSeconds: Seconds(
      10,
      "While the upstream is silent, send an SSE comment (`: keepalive`) to streaming clients this often; 0 turns it off.",
    ),
    compactBudgetSeconds: Seconds(
      180,
      "Time allowed for one remote compaction (`/responses/compact`), failover included.",
      1,
    ),
    upstreamTransport: Type.Union(
      ["auto", "websocket", "http"].map((l) => Type.Literal(l)),
      {
        default: "auto",
        description:
          "How WebSocket clients' turns reach the upstream: `websocket` (one upstream socket per client socket), `http` (SSE), or `auto` (WebSocket, falling back to HTTP for an upstream that refuses the upgrade, remembered per upstream).",
      },
    ),
    websocketIdleTimeoutSeconds: Seconds(
      120,
      "Close a client's Responses WebSocket after this many seconds without a message while no turn is in flight.",
      0.05,
    ),
    websocketMaxMessageBytes: Type.Integer({
      minimum: 1024,
      default: 32 * 1024 * 1024,
      description:
        "Largest accepted Responses WebSocket message (one `response.create`), in bytes; a larger one closes the socket with 1009.",
    }),
    websocketMaxHistoryBytes: Type.Integer({
      minimum: 0,
      default: 16 * 1024 * 1024,
      description:
        "Largest conversation a client's Responses WebSocket keeps to resend when a continuation must move (another account, HTTP, a new upstream connection); past it only the upstream connection that made the response can continue it.",
    }),
    settleWaitMs: Type.Integer({
      minimum: 1,
      default: 5000,
      description:
        "How long the end of a keyed answer waits for its API-key reservation's settle to commit, in milliseconds; past it the answer ends anyway and the settle goes on (on PostgreSQL it is cancelled once it has run twice this: docs/proxy.md).",
    }),
    requestLogFlushMs: Type.Integer({
      minimum: 1,
      default: 250,
      description: "How often buffered request log rows are written to the store, in milliseconds.",
    }),
    modelsCacheSeconds: Seconds(300, "How long the upstream model list is cached.", 0),
    routingStrategy: Type.Union(
      routingStrategies.map((s) => Type.Literal(s)),
      {
        default: "capacity_weighted",
        description: "Default account routing strategy (changeable at runtime via /api/settings).",
      },
    ),
    stickyTtlSeconds: Seconds(
      1800,
      "How long a sticky session key stays bound to its account after its last use.",
      1,
    ),
    accountMaxStreams: Type.Integer({
      minimum: 1,
      default: 8,
      description: "Concurrent streams allowed per account.",
    }),
    upstreamMaxRequests: Type.Integer({
      minimum: 1,
      maximum: 65535,
      default: 16384,
      description:
        "Upstream requests (streams) Bun's `fetch` runs at once, all accounts together, when it carries them (`CODEX_LB_UPSTREAM_CLIENT=fetch`, or a proxy is set; the gateway's own client has no such limit). Bun's `fetch` runs 256 unless told: the gateway restarts itself in place at start-up with `BUN_CONFIG_MAX_HTTP_REQUESTS` set to this; a `BUN_CONFIG_MAX_HTTP_REQUESTS` set by the operator wins. Each request holds a socket: keep it under the open-file limit.",
    }),
    upstreamClient: Type.Union(
      upstreamClients.map((l) => Type.Literal(l)),
      {
        default: "auto",
        description:
          "The HTTP client of upstream requests: `auto` uses the gateway's own HTTP/1.1 client on the main thread (keep-alive pool per origin, TLS verified; about 0.1 ms sooner per request at one connection, and no 64 KB read buffer per open stream, than Bun's `fetch`, which hands every answer over from another thread), or `fetch` when `HTTP_PROXY`, `HTTPS_PROXY` or `ALL_PROXY` is set; `fetch` always uses Bun's `fetch`.",
      },
    ),
    gcRequestStep: Type.Integer({
      minimum: 0,
      default: 1000,
      description:
        "Memory: while at least this many requests are in flight (streams included), every this many units of work (a request arriving, a chunk read from an upstream answer) ask for a full garbage collection (0: never; the engine's own timing then decides, and the peak memory of thousands of streams at once varies from run to run). Fewer requests in flight never ask. One collection pauses the gateway for about 0.1 s at 10,000 open streams; the next waits at least four times as long as it took.",
    }),
    gcMinIntervalMs: Type.Integer({
      minimum: 0,
      default: 100,
      description:
        "Least time from one collection asked for by `CODEX_LB_GC_REQUEST_STEP` to the next, in milliseconds.",
    }),
    accountQueueWaitMs: Type.Integer({
      minimum: 0,
      default: 2000,
      description:
        "How long a request waits for a stream slot when every eligible account is at its cap, before a 429 `proxy_overloaded`.",
    }),
    trustedProxies: CsvList(
      "Addresses or CIDR ranges of reverse proxies whose forwarding header (`CODEX_LB_FORWARDED_HEADER`) is believed.",
    ),
    forwardedHeader: Type.Union(
      forwardedHeaders.map((h) => Type.Literal(h)),
      {
        default: "x-forwarded-for",
        description:
          "The one header your trusted proxy writes with the client address; other forwarding headers are ignored.",
      },
    ),
    allowedOrigins: Type.Array(Type.String({ pattern: "^https?://[A-Za-z0-9.\\-\\[\\]:]+$" }), {
      default: [],
      csv: true,
      description:
        "Extra browser origins (e.g. `https://admin.example.com`) allowed to send state-changing requests; the gateway's own origin always is.",
    }),
    maxBodyBytes: Type.Integer({
      minimum: 1024,
      default: 32 * 1024 * 1024,
      description: "Largest accepted request body, in bytes.",
    }),
    bodyTimeoutSeconds: Seconds(
      60,
      "A request body must arrive completely within this many seconds of its headers (else 408).",
      0.05,
    ),
    headersTimeoutSeconds: Type.Number({
      minimum: 0.1,
      // Bun's own first-headers timer (uWS, fixed at about 10 s, armed when a connection opens)
      // closes such a connection anyway: a longer setting would have no effect.
      maximum: 10,
      default: 10,
      description:
        "A new connection must finish its first request's headers within this many seconds of opening, else it is closed without an answer (checked four times per period, so up to a quarter more). At most 10: Bun's own fixed first-headers timer closes such a connection after about 10 s anyway. Later requests on a kept-alive connection fall under `CODEX_LB_CONNECTION_IDLE_TIMEOUT_SECONDS`.",
    }),
    maxPendingConnectionsPerAddress: Type.Integer({
      minimum: 1,
      default: 128,
      description:
        "Connections per client address that may be open without having finished their first request's headers; more are closed at once. Behind a reverse proxy this counts the proxy's connections.",
    }),
    connectionIdleTimeoutSeconds: Type.Integer({
      minimum: 0,
      maximum: 255,
      default: 60,
      description:
        "A kept-alive client connection is closed when it has waited this long for its next request, or is still sending that request's headers (checked every few seconds; 0: never). Answers in progress and streams are not limited by it. A new connection's first headers fall under `CODEX_LB_HEADERS_TIMEOUT_SECONDS`.",
    }),
    maxUnauthenticatedPerAddress: Type.Integer({
      minimum: 1,
      default: 32,
      description:
        "Requests per client address that may be receiving their body before they are authenticated (login, a keyless or not yet checked request); more get 429 at once.",
    }),
    apiKeyAuthEnabled: Type.Boolean({
      default: false,
      description:
        "Require an API key from every proxy client (changeable at runtime via /api/settings); off: only clients on this machine are served, without a key.",
    }),
    shutdownGraceSeconds: Seconds(30, "On SIGTERM, how long in-flight requests may take to finish."),
    adminSessionIdleSeconds: Seconds(
      3600,
      "An admin session ends after this many seconds without a request.",
      60,
    ),
    adminSessionMaxSeconds: Seconds(
      43200,
      "An admin session ends this many seconds after login, however active.",
      60,
    ),
    requestLogRetentionDays: Type.Integer({
      minimum: 1,
      default: 30,
      description: "Request-log rows older than this many days are pruned (hourly, in the background).",
    }),
    auditRetentionDays: Type.Integer({
      minimum: 1,
      default: 365,
      description:
        "Audit rows (admin changes, logins) and account status events older than this many days are pruned.",
    }),
    usageRetentionDays: Type.Integer({
      minimum: 32,
      default: 730,
      description:
        "Hourly usage aggregates per API key (kept after their request-log rows are pruned) older than this many days are pruned.",
    }),
    metricsEnabled: Type.Boolean({
      default: true,
      description:
        "Serve Prometheus metrics at `/metrics` (admin session, local caller, or `CODEX_LB_METRICS_TOKEN`).",
    }),
    metricsToken: Type.String({
      default: "",
      secret: true,
      description:
        "A bearer token a Prometheus scraper may send to `/metrics` instead of an admin session (empty: admin access only).",
    }),
    otelTracesEndpoint: Type.String({
      pattern: "^(https?://\\S+)?$",
      default: "",
      httpUrl: true,
      description:
        "OTLP/HTTP traces URL (`http://127.0.0.1:4318/v1/traces`): one OpenTelemetry span per proxied request is exported there (empty: trace export off, nothing of OpenTelemetry is loaded).",
    }),
    otelSampleRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 1,
      description:
        "Share of requests traced when trace export is on (0 to 1, by trace id); a request whose client sent a sampled `traceparent` is always traced, an unsampled one never.",
    }),
    otelHeaders: Type.String({
      default: "",
      secret: true,
      description:
        "Headers sent with each OTLP export, `name=value` pairs separated by commas (`authorization=Bearer%20abc`; values URL-decoded).",
    }),
  },
  { additionalProperties: false },
);

export type Settings = Static<typeof SettingsSchema>;
export type SettingKey = keyof Settings;

/** `streamIdleTimeoutSeconds` → `CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS`. */
export function envNameOf(key: string): string {
  return `CODEX_LB_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}
