/**
 * Builds a realistic data dir of the Python codex-lb (see shared/reference/codex-lb-store.md):
 * `encryption.key` (a Fernet key, 44 bytes, no newline, mode 0600) and `store.db` managed by
 * Alembic, in WAL mode, with the tables and formats that release writes: Fernet tokens (made here
 * with an independent Fernet implementation over WebCrypto, checked against the spec's test
 * vector), a bcrypt admin password, naive UTC datetimes as text, enums as lowercase text,
 * booleans as 0/1, limits in micro-dollars — plus tables and columns we ignore.
 *
 * @module
 */
import { Database } from "bun:sqlite";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { base32Encode } from "../../src/access/admin-auth/totp.ts";
import type { TokenBundle } from "../fakes/auth.ts";

// ---------------------------------------------------------------- Fernet (spec: github.com/fernet/spec)

const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** A new Fernet key: URL-safe base64 (padded) of 32 random bytes, as `Fernet.generate_key()`. */
export function fernetKey(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url") + "=";
}

/** A Fernet token of `plain`, as Python's `Fernet(key).encrypt(plain.encode())` makes one. */
export async function fernetEncrypt(
  key: string,
  plain: string,
  opts: { iv?: Uint8Array; time?: number } = {},
): Promise<string> {
  const raw = new Uint8Array(Buffer.from(key, "base64url"));
  if (raw.length !== 32) throw new Error("a Fernet key is 32 bytes");
  const iv = opts.iv ?? crypto.getRandomValues(new Uint8Array(16));
  const aes = await crypto.subtle.importKey("raw", raw.slice(16), { name: "AES-CBC" }, false, ["encrypt"]);
  // WebCrypto's AES-CBC applies PKCS#7 padding, as the spec requires.
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-CBC", iv: new Uint8Array(iv) },
      aes,
      new TextEncoder().encode(plain),
    ),
  );
  const body = new Uint8Array(1 + 8 + 16 + ct.length);
  body[0] = 0x80;
  new DataView(body.buffer).setBigUint64(1, BigInt(opts.time ?? Math.floor(Date.now() / 1000)));
  body.set(iv, 9);
  body.set(ct, 25);
  const hmacKey = await crypto.subtle.importKey(
    "raw",
    raw.slice(0, 16),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, body));
  const token = new Uint8Array(body.length + 32);
  token.set(body);
  token.set(mac, body.length);
  // Python's base64.urlsafe_b64encode keeps the padding.
  const s = b64url(token);
  return s + "=".repeat((4 - (s.length % 4)) % 4);
}

// ---------------------------------------------------------------- the store

/** `YYYY-MM-DD HH:MM:SS.ffffff`: how SQLAlchemy stores a naive UTC datetime in SQLite. */
export function pyTime(ms: number): string {
  return `${new Date(ms).toISOString().replace("T", " ").replace("Z", "")}000`;
}

const SCHEMA = `
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
CREATE TABLE accounts (
  id VARCHAR NOT NULL PRIMARY KEY, chatgpt_account_id VARCHAR, chatgpt_user_id VARCHAR,
  codex_installation_id VARCHAR, email VARCHAR NOT NULL, alias VARCHAR, workspace_id VARCHAR,
  workspace_label VARCHAR, seat_type VARCHAR, plan_type VARCHAR NOT NULL,
  routing_policy VARCHAR(11) DEFAULT 'normal' NOT NULL, priority INTEGER DEFAULT 0 NOT NULL,
  access_token_encrypted BLOB NOT NULL, refresh_token_encrypted BLOB NOT NULL, id_token_encrypted BLOB NOT NULL,
  last_refresh DATETIME NOT NULL, created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
  status VARCHAR(15) NOT NULL, deactivation_reason TEXT, reset_at INTEGER, blocked_at INTEGER,
  delete_requested_at DATETIME, proxy_pool_id VARCHAR, security_work_authorized BOOLEAN DEFAULT 0 NOT NULL
);
CREATE TABLE api_keys (
  id VARCHAR NOT NULL PRIMARY KEY, name VARCHAR NOT NULL, key_hash VARCHAR NOT NULL UNIQUE, key_prefix VARCHAR NOT NULL,
  allowed_models TEXT, enforced_model VARCHAR, enforced_reasoning_effort VARCHAR, allowed_reasoning_efforts TEXT,
  enforced_service_tier VARCHAR, traffic_class VARCHAR DEFAULT 'default', expires_at DATETIME,
  is_active BOOLEAN DEFAULT 1 NOT NULL, created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, last_used_at DATETIME
);
CREATE TABLE api_key_limits (
  id INTEGER NOT NULL PRIMARY KEY, api_key_id VARCHAR NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  limit_type VARCHAR(13) NOT NULL, limit_window VARCHAR(7) NOT NULL, max_value BIGINT NOT NULL,
  current_value BIGINT DEFAULT 0 NOT NULL, model_filter VARCHAR, reset_at DATETIME NOT NULL
);
CREATE TABLE api_firewall_allowlist (ip_address VARCHAR NOT NULL PRIMARY KEY, created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL);
CREATE TABLE sticky_sessions (
  provider_kind VARCHAR DEFAULT 'chatgpt_web' NOT NULL, kind VARCHAR(13) DEFAULT 'sticky_thread' NOT NULL, "key" VARCHAR NOT NULL,
  routing_subject_id VARCHAR NOT NULL, account_id VARCHAR REFERENCES accounts (id) ON DELETE CASCADE,
  created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, updated_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
  PRIMARY KEY (provider_kind, kind, "key")
);
CREATE TABLE agent_provider_accounts (id VARCHAR NOT NULL PRIMARY KEY, provider_id VARCHAR NOT NULL, display_name VARCHAR NOT NULL,
  status VARCHAR DEFAULT 'active' NOT NULL, auth_mode VARCHAR NOT NULL, api_key_encrypted BLOB, created_at DATETIME NOT NULL);
CREATE TABLE dashboard_settings (
  id INTEGER NOT NULL PRIMARY KEY, sticky_threads_enabled BOOLEAN DEFAULT 1 NOT NULL,
  prefer_earlier_reset_accounts BOOLEAN DEFAULT 1 NOT NULL, routing_strategy VARCHAR DEFAULT 'capacity_weighted' NOT NULL,
  openai_cache_affinity_max_age_seconds INTEGER DEFAULT 1800 NOT NULL, import_without_overwrite BOOLEAN DEFAULT 0 NOT NULL,
  totp_required_on_login BOOLEAN DEFAULT 0 NOT NULL, password_hash TEXT, api_key_auth_enabled BOOLEAN DEFAULT 0 NOT NULL,
  totp_secret_encrypted BLOB, totp_last_verified_step INTEGER, bootstrap_token_encrypted BLOB,
  request_log_retention_days INTEGER DEFAULT 30, usage_history_retention_days INTEGER DEFAULT 90,
  image_generation_enabled BOOLEAN DEFAULT 0 NOT NULL, updated_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL
);
CREATE TABLE request_logs (
  id INTEGER NOT NULL PRIMARY KEY, account_id VARCHAR, api_key_id VARCHAR, request_id VARCHAR NOT NULL,
  requested_at DATETIME NOT NULL, model VARCHAR, input_tokens INTEGER, output_tokens INTEGER, cached_input_tokens INTEGER,
  reasoning_tokens INTEGER, cost_usd FLOAT, status VARCHAR NOT NULL, error_code VARCHAR, error_message TEXT,
  latency_ms INTEGER, transport VARCHAR, plan_type VARCHAR
);
CREATE TABLE usage_history (id INTEGER NOT NULL PRIMARY KEY, account_id VARCHAR NOT NULL, recorded_at DATETIME NOT NULL,
  used_percent FLOAT NOT NULL, window VARCHAR, reset_at INTEGER, window_minutes INTEGER);
CREATE TABLE proxy_pools (id VARCHAR NOT NULL PRIMARY KEY, name VARCHAR NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE scheduler_leader (id INTEGER NOT NULL PRIMARY KEY, holder VARCHAR, expires_at DATETIME);
CREATE TABLE oauth_states (state VARCHAR NOT NULL PRIMARY KEY, verifier VARCHAR NOT NULL, created_at DATETIME NOT NULL);
CREATE INDEX ix_request_logs_requested_at ON request_logs (requested_at);
CREATE INDEX ix_sticky_sessions_account ON sticky_sessions (account_id);
`;

/** One Python account row to write. */
export interface PyAccount {
  readonly id: string;
  readonly email: string;
  readonly chatgptAccountId: string;
  readonly chatgptUserId: string;
  readonly planType: string;
  readonly tokens: TokenBundle;
  readonly status?: string;
  readonly reason?: string | null;
  readonly routingPolicy?: string;
  readonly alias?: string | null;
  readonly resetAt?: number | null;
  readonly blockedAt?: number | null;
  readonly deleteRequested?: boolean;
  /** Write garbage instead of a Fernet token for the refresh token. */
  readonly corruptToken?: boolean;
  readonly lastRefreshMs?: number;
}

export interface PyApiKey {
  readonly id: string;
  readonly name: string;
  readonly key: string;
  readonly allowedModels?: string | null;
  readonly expiresAtMs?: number | null;
  readonly isActive?: boolean;
  readonly createdAtMs: number;
  readonly limits?: readonly {
    type: string;
    window: string;
    max: number;
    current?: number;
    modelFilter?: string | null;
  }[];
}

export interface PySticky {
  readonly key: string;
  readonly kind: string;
  /** Null for an OpenAI-platform binding. */
  readonly accountId: string | null;
  /** `chatgpt_web` (default) or `openai_platform`. */
  readonly provider?: string;
  readonly updatedAtMs: number;
}

export interface PythonStoreSpec {
  readonly accounts: readonly PyAccount[];
  readonly apiKeys: readonly PyApiKey[];
  readonly firewall: readonly string[];
  readonly sticky: readonly PySticky[];
  readonly settings: {
    readonly routingStrategy: string;
    readonly stickyTtlSeconds: number;
    readonly apiKeyAuthEnabled: boolean;
    /** Plain password; stored as a bcrypt hash. */
    readonly password: string | null;
    /** Base32 TOTP secret; stored Fernet-encrypted, required on login. */
    readonly totpSecret: string | null;
    readonly totpLastStep?: number | null;
  };
  /** Request-log rows to write into the history table we ignore. */
  readonly requestLogs?: number;
}

/** A new random base32 TOTP secret. */
export function newTotpSecret(): string {
  return base32Encode(crypto.getRandomValues(new Uint8Array(20)));
}

async function sha256Hex(text: string): Promise<string> {
  return Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))).toString("hex");
}

/** Writes `dir/encryption.key` and `dir/store.db`; returns the Fernet key. */
export async function writePythonDataDir(
  dir: string,
  spec: PythonStoreSpec,
  key = fernetKey(),
): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = join(dir, "encryption.key");
  writeFileSync(keyPath, key, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  const enc = async (plain: string) => Buffer.from(await fernetEncrypt(key, plain), "ascii");
  const db = new Database(join(dir, "store.db"), { create: true });
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(SCHEMA);
    db.run("INSERT INTO alembic_version VALUES ('20260701_000000')");
    const now = Date.now();
    for (const a of spec.accounts) {
      db.run(
        `INSERT INTO accounts (id, chatgpt_account_id, chatgpt_user_id, codex_installation_id, email, alias, workspace_id,
          workspace_label, seat_type, plan_type, routing_policy, access_token_encrypted, refresh_token_encrypted,
          id_token_encrypted, last_refresh, created_at, status, deactivation_reason, reset_at, blocked_at, delete_requested_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          a.id,
          a.chatgptAccountId,
          a.chatgptUserId,
          crypto.randomUUID(),
          a.email,
          a.alias ?? null,
          a.chatgptAccountId,
          "Personal",
          "default",
          a.planType,
          a.routingPolicy ?? "normal",
          await enc(a.tokens.accessToken),
          a.corruptToken ? Buffer.from("gAAAAAB-not-a-valid-token") : await enc(a.tokens.refreshToken),
          await enc(a.tokens.idToken),
          pyTime(a.lastRefreshMs ?? now - 3600_000),
          pyTime(now - 30 * 86_400_000),
          a.status ?? "active",
          a.reason ?? null,
          a.resetAt ?? null,
          a.blockedAt ?? null,
          a.deleteRequested ? pyTime(now - 60_000) : null,
        ],
      );
    }
    let limitId = 0;
    for (const k of spec.apiKeys) {
      db.run(
        `INSERT INTO api_keys (id, name, key_hash, key_prefix, allowed_models, enforced_model, expires_at, is_active, created_at)
         VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
        [
          k.id,
          k.name,
          await sha256Hex(k.key),
          k.key.slice(0, 15),
          k.allowedModels ?? null,
          k.expiresAtMs ? pyTime(k.expiresAtMs) : null,
          k.isActive === false ? 0 : 1,
          pyTime(k.createdAtMs),
        ],
      );
      for (const l of k.limits ?? []) {
        db.run(
          `INSERT INTO api_key_limits (id, api_key_id, limit_type, limit_window, max_value, current_value, model_filter, reset_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            ++limitId,
            k.id,
            l.type,
            l.window,
            l.max,
            l.current ?? 0,
            l.modelFilter ?? null,
            pyTime(now + 86_400_000),
          ],
        );
      }
    }
    for (const ip of spec.firewall) {
      db.run("INSERT INTO api_firewall_allowlist (ip_address, created_at) VALUES (?, ?)", [ip, pyTime(now)]);
    }
    for (const s of spec.sticky) {
      db.run(
        `INSERT INTO sticky_sessions (provider_kind, key, kind, routing_subject_id, account_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [
          s.provider ?? "chatgpt_web",
          s.key,
          s.kind,
          s.accountId ?? "platform-identity-1",
          s.accountId,
          pyTime(s.updatedAtMs - 60_000),
          pyTime(s.updatedAtMs),
        ],
      );
    }
    const st = spec.settings;
    db.run(
      `INSERT INTO dashboard_settings (id, routing_strategy, openai_cache_affinity_max_age_seconds, totp_required_on_login,
        password_hash, api_key_auth_enabled, totp_secret_encrypted, totp_last_verified_step, request_log_retention_days)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, 30)`,
      [
        st.routingStrategy,
        st.stickyTtlSeconds,
        st.totpSecret ? 1 : 0,
        // The Python release hashes with bcrypt (cost 12); cost 4 keeps the tests quick, same format.
        st.password ? await Bun.password.hash(st.password, { algorithm: "bcrypt", cost: 4 }) : null,
        st.apiKeyAuthEnabled ? 1 : 0,
        st.totpSecret ? await enc(st.totpSecret) : null,
        st.totpLastStep ?? null,
      ],
    );
    for (let i = 0; i < (spec.requestLogs ?? 0); i++) {
      db.run(
        `INSERT INTO request_logs (account_id, api_key_id, request_id, requested_at, model, input_tokens, output_tokens, status, latency_ms)
         VALUES (?, ?, ?, ?, 'gpt-5.2', 100, 20, 'success', 850)`,
        [spec.accounts[0]?.id ?? null, spec.apiKeys[0]?.id ?? null, `req_${i}`, pyTime(now - i * 60_000)],
      );
    }
    db.run("INSERT INTO proxy_pools VALUES ('pool1', 'default', ?)", [pyTime(now)]);
    db.run("INSERT INTO oauth_states VALUES ('st1', 'verifier', ?)", [pyTime(now)]);
    db.run(
      "INSERT INTO agent_provider_accounts VALUES ('ag1', 'anthropic', 'Claude', 'active', 'api_key', ?, ?)",
      [await enc("sk-ant-not-imported"), pyTime(now)],
    );
  } finally {
    db.close();
  }
  return key;
}
