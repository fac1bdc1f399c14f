/**
 * The database types: one interface per table, the only place that declares them. Times are epoch
 * milliseconds (INTEGER), booleans are 0/1 integers, lists and objects are JSON text; this keeps
 * the schema the same on SQLite and PostgreSQL.
 *
 * @module
 */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";
import type { AccountStatus, RoutingPolicy } from "../core/types.ts";

type Bool = number;

export interface AccountsTable {
  /** Stable local id derived from the identity (see the accounts issue). */
  id: string;
  chatgpt_account_id: string | null;
  chatgpt_user_id: string | null;
  email: string | null;
  alias: string | null;
  plan_type: string | null;
  routing_policy: ColumnType<RoutingPolicy, RoutingPolicy | undefined, RoutingPolicy>;
  /** One stable UUID per account, sent upstream as `x-codex-installation-id`. */
  codex_installation_id: string;
  /** AES-256-GCM blobs (iv ‖ ciphertext); never logged, never in an API answer but an export. */
  access_token_enc: Uint8Array | null;
  refresh_token_enc: Uint8Array | null;
  id_token_enc: Uint8Array | null;
  access_token_expires_at: number | null;
  last_refresh_at: number | null;
  status: ColumnType<AccountStatus, AccountStatus | undefined, AccountStatus>;
  status_reason: string | null;
  /** When a rate limit or quota block ends. */
  reset_at: number | null;
  /** When the account entered its current blocked status. */
  blocked_at: number | null;
  /** Transient backoff: not selected before this time; status stays as it is. */
  cooldown_until: number | null;
  failure_streak: ColumnType<number, number | undefined, number>;
  /** Compare-and-set counter, +1 on every change the action applier makes. */
  version: ColumnType<number, number | undefined, number>;
  created_at: number;
  updated_at: number;
}

export interface AccountEventsTable {
  id: Generated<number>;
  at: number;
  account_id: string;
  /** The action type, e.g. `account.deactivate`, or `account.login` for a (re-)login. */
  action: string;
  from_status: string | null;
  to_status: string | null;
  reason: string | null;
  /** The hook (`refresh.failed`) or surface (`admin`, `login`) that caused it. */
  source: string;
  /** The plugin whose handler returned the action, if any. */
  plugin: string | null;
  request_id: string | null;
  /** JSON text with the action's other fields (never a token). */
  details: string | null;
}

export interface UsageSnapshotsTable {
  id: Generated<number>;
  account_id: string;
  recorded_at: number;
  /** `primary` (about 5 h) or `secondary` (about a week). */
  window: string;
  used_percent: number;
  window_minutes: number | null;
  reset_at: number | null;
  credits_has: Bool | null;
  credits_unlimited: Bool | null;
  credits_balance: number | null;
}

export interface RequestLogsTable {
  id: Generated<number>;
  requested_at: number;
  request_id: string;
  account_id: string | null;
  api_key_id: string | null;
  model: string | null;
  endpoint: string;
  client: string | null;
  client_ip: string | null;
  /** `success` | `error` | `cancelled`. */
  status: string;
  http_status: number | null;
  error_code: string | null;
  error_message: string | null;
  input_tokens: number | null;
  cached_input_tokens: number | null;
  output_tokens: number | null;
  reasoning_tokens: number | null;
  cost_usd: number | null;
  latency_ms: number | null;
  ttfb_ms: number | null;
  /** Milliseconds the request waited for a stream slot (null: it never reached an account, or older rows). */
  queue_ms: ColumnType<number | null, number | null | undefined, number | null>;
  /** Upstream response id, so `previous_response_id` can be routed to its owner. */
  response_id: string | null;
  session_key: string | null;
  reasoning_effort: string | null;
  /** The client's transport: `http` | `websocket`. */
  transport: ColumnType<string, string | undefined, string>;
  /** The transport used towards the upstream: `http` | `websocket`; null when none was called. */
  upstream_transport: ColumnType<string | null, string | null | undefined, string | null>;
  /** `compact` (a remote compaction: the compact endpoints or a turn ending in `compaction_trigger`) | `response`. */
  kind: ColumnType<string, string | undefined, string>;
}

/** The account that produced an upstream response (`previous_response_id` routing), kept for a TTL. */
export interface ResponseOwnersTable {
  response_id: string;
  account_id: string;
  /** `requested_at` of the request that produced it. */
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  /** SHA-256 hex of the whole key. */
  key_hash: string;
  key_prefix: string;
  is_active: ColumnType<Bool, Bool | undefined, Bool>;
  expires_at: number | null;
  /** JSON array of model ids; null = every model. */
  allowed_models: string | null;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
}

export interface ApiKeyLimitsTable {
  id: Generated<number>;
  api_key_id: string;
  /** `total_tokens` | `input_tokens` | `output_tokens` | `cost_usd`. */
  limit_type: string;
  /** `5h` | `daily` | `weekly` | `monthly`. */
  limit_window: string;
  max_value: number;
}

export interface SettingsTable {
  key: string;
  /** JSON text. */
  value: string;
  version: ColumnType<number, number | undefined, number>;
  updated_at: number;
}

export interface StickySessionsTable {
  key: string;
  /** Where the key came from: `turn_state`, `session`, `thread`, `prompt_cache`. */
  kind: string;
  account_id: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
}

export interface FirewallAllowlistTable {
  /** An IPv4/IPv6 address or CIDR range, normalised. */
  entry: string;
  created_at: number;
}

export interface AdminSessionsTable {
  /** SHA-256 hex of the session token held in the cookie. */
  id_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  client_ip: string | null;
}

export interface AuditLogsTable {
  id: Generated<number>;
  at: number;
  action: string;
  actor_ip: string | null;
  request_id: string | null;
  /** JSON text; never a secret. */
  details: string | null;
}

/** The single row (id 1) of admin secrets: hashes only, except the TOTP secret the server must read. */
export interface AdminCredentialsTable {
  id: number;
  /** Bun.password argon2id hash; null until a password is set. */
  password_hash: string | null;
  /** Base32 TOTP secret once confirmed; null when TOTP is off. */
  totp_secret: string | null;
  /** Base32 secret offered by setup and not yet confirmed. */
  totp_pending_secret: string | null;
  /** Last accepted TOTP time step (a code is accepted once). */
  totp_last_step: number | null;
  /** JSON array of SHA-256 hex hashes of the unused recovery codes. */
  recovery_codes: string | null;
  /** SHA-256 hex of the one-time bootstrap token; null once a password exists. */
  bootstrap_token_hash: string | null;
  updated_at: number;
}

/**
 * Per API key, hour and model: sums of its request logs, kept by triggers on `request_logs`
 * (migration 0030). `unpriced_*` count the tokens of rows without a stored `cost_usd`.
 */
export interface ApiKeyUsageHourlyTable {
  api_key_id: string;
  /** Start of the hour, epoch ms. */
  hour: number;
  /** '' when the log row had no model. */
  model: string;
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  stored_cost_usd: number;
  unpriced_input_tokens: number;
  unpriced_cached_input_tokens: number;
  unpriced_output_tokens: number;
}

/** One row (id 1): the pruner's flag (the request-log delete trigger keeps usage buckets while set). */
export interface RetentionStateTable {
  id: number;
  pruning: number;
  last_pruned_at: number | null;
}

/** A running gateway (several may share one PostgreSQL database). */
export interface ClusterReplicasTable {
  id: string;
  /** Host name and process id, for people. */
  name: string;
  version: string;
  started_at: number;
  heartbeat_at: number;
}

/** A named lease (`leader`): held by `holder` until `expires_at` unless renewed. */
export interface ClusterLeasesTable {
  name: string;
  holder: string;
  acquired_at: number;
  expires_at: number;
}

/** The one token refresh of an account in flight across replicas. */
export interface RefreshClaimsTable {
  account_id: string;
  /** Hash of the refresh token the claim's refresh uses (its generation). */
  token_hash: string;
  holder: string;
  expires_at: number;
  /** JSON `{ code, message, dead }` of a failed refresh, reported to others until `expires_at`. */
  failure: string | null;
}

/** A stream in flight, for the per-account cap across replicas (PostgreSQL only). */
export interface StreamLeasesTable {
  id: string;
  account_id: string;
  replica_id: string;
  expires_at: number;
}

/** One counted credential attempt (replicas on PostgreSQL share the count). */
export interface LoginAttemptsTable {
  id: string;
  address: string;
  at: number;
}

/** A keyed request's reserved (then settled) usage until its log row is written. */
export interface ApiKeyReservationsTable {
  id: string;
  api_key_id: string;
  request_id: string;
  model: string;
  created_at: number;
  /** 0 while the request is in flight (estimate), 1 once settled with its real usage. */
  settled: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface Database {
  accounts: AccountsTable;
  account_events: AccountEventsTable;
  usage_snapshots: UsageSnapshotsTable;
  request_logs: RequestLogsTable;
  response_owners: ResponseOwnersTable;
  api_keys: ApiKeysTable;
  api_key_limits: ApiKeyLimitsTable;
  settings: SettingsTable;
  sticky_sessions: StickySessionsTable;
  firewall_allowlist: FirewallAllowlistTable;
  admin_sessions: AdminSessionsTable;
  audit_logs: AuditLogsTable;
  admin_credentials: AdminCredentialsTable;
  api_key_usage_hourly: ApiKeyUsageHourlyTable;
  retention_state: RetentionStateTable;
  cluster_replicas: ClusterReplicasTable;
  cluster_leases: ClusterLeasesTable;
  refresh_claims: RefreshClaimsTable;
  stream_leases: StreamLeasesTable;
  login_attempts: LoginAttemptsTable;
  api_key_reservations: ApiKeyReservationsTable;
}

export type AccountRow = Selectable<AccountsTable>;
export type NewAccountRow = Insertable<AccountsTable>;
export type AccountUpdate = Updateable<AccountsTable>;
export type AccountEventRow = Selectable<AccountEventsTable>;
export type RequestLogRow = Selectable<RequestLogsTable>;
export type NewRequestLogRow = Insertable<RequestLogsTable>;
