/**
 * Turns the Python store's rows into what our store holds: decrypted tokens, our enums and units,
 * and for every row or value we do not take, a line saying which and why. Pure apart from the
 * Fernet decryption; writes nothing (see `apply.ts`).
 *
 * Mapping (Python → ours): account statuses and routing policies are the same words; `reset_at`
 * and `blocked_at` are epoch seconds → ms; limit windows `daily|weekly|monthly|5h` as they are and
 * `7d` → `weekly`; `cost_usd` limits are micro-dollars → dollars; sticky kinds `codex_session` →
 * `session`, `sticky_thread` → `thread`, `prompt_cache` as it is; datetimes are naive UTC text.
 *
 * @module
 */

import { API_KEY_PREFIX, KEY_PREFIX_LENGTH } from "../access/api-keys/key.ts";
import { type LimitSpec, type LimitType, type LimitWindow, limitTypes } from "../access/api-keys/limits.ts";
import { identityFromTokens } from "../accounts/claims.ts";
import { numeric } from "../core/coerce.ts";
import { type AccountStatus, accountStatuses, type RoutingPolicy, routingPolicies } from "../core/types.ts";
import { normalizeEntry } from "../firewall/store.ts";
import { routingStrategies } from "../settings/schema.ts";
import type { StickyKind } from "../sticky/store.ts";
import { FernetError, type FernetKey } from "./fernet.ts";
import { ImportSourceError, type PythonSnapshot, type Row } from "./read.ts";

/** Longest sticky key the balancer uses (plugins/balancing/affinity.ts). */
const MAX_STICKY_KEY = 512;

export type ItemKind = "account" | "api_key" | "limit" | "firewall" | "sticky_session" | "setting" | "admin";

/** One thing not imported, and why. */
export interface Skipped {
  readonly kind: ItemKind;
  /** Which one: an id, an address, a key prefix, a setting name. */
  readonly item: string;
  readonly reason: string;
}

export interface PlannedAccount {
  readonly pythonId: string;
  readonly chatgptAccountId: string | null;
  readonly chatgptUserId: string | null;
  readonly email: string | null;
  readonly alias: string | null;
  readonly planType: string | null;
  readonly routingPolicy: RoutingPolicy;
  readonly installationId: string | null;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly idToken: string;
  readonly lastRefreshAt: number | null;
  readonly status: AccountStatus;
  readonly statusReason: string | null;
  readonly resetAt: number | null;
  readonly blockedAt: number | null;
  readonly createdAt: number | null;
}

export interface PlannedApiKey {
  readonly pythonId: string;
  readonly name: string;
  readonly keyHash: string;
  readonly keyPrefix: string;
  readonly isActive: boolean;
  readonly expiresAt: number | null;
  readonly allowedModels: readonly string[] | null;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly limits: readonly LimitSpec[];
}

export interface PlannedSticky {
  readonly key: string;
  readonly kind: StickyKind;
  readonly pythonAccountId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number;
}

export interface ImportPlan {
  readonly accounts: readonly PlannedAccount[];
  readonly apiKeys: readonly PlannedApiKey[];
  readonly firewall: readonly string[];
  readonly sticky: readonly PlannedSticky[];
  /** Runtime settings to set (only the ones read and valid). */
  readonly settings: {
    routingStrategy?: (typeof routingStrategies)[number];
    stickyTtlSeconds?: number;
    apiKeyAuthEnabled?: boolean;
  };
  /** The admin password hash (bcrypt, used as it is) and TOTP, when there is one. */
  readonly admin: {
    readonly passwordHash: string | null;
    readonly totpSecret: string | null;
    readonly totpLastStep: number | null;
  };
  readonly skipped: readonly Skipped[];
  /** Things worth knowing that are not a skipped item (e.g. usage counters restart). */
  readonly notes: readonly string[];
  /** Tables not read that hold rows (`request_logs` is read only with the history option). */
  readonly ignoredWithRows: readonly { readonly table: string; readonly rows: number }[];
}

const text = (v: unknown): string | null => {
  if (typeof v === "string") return v.trim() === "" ? null : v.trim();
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (v instanceof Uint8Array) return new TextDecoder().decode(v).trim() || null;
  return null;
};
const bool = (v: unknown): boolean | null => {
  if (typeof v === "boolean") return v;
  const n = numeric(v);
  if (n !== null) return n !== 0;
  const t = text(v)?.toLowerCase();
  return t === "true" ? true : t === "false" ? false : null;
};

/** A SQLAlchemy datetime (`YYYY-MM-DD HH:MM:SS[.ffffff]`, naive UTC; or ISO; or epoch) as epoch ms. */
export function pyDatetime(v: unknown): number | null {
  const n = numeric(v);
  if (n !== null) return n > 1e12 ? Math.round(n) : Math.round(n * 1000);
  const t = text(v);
  if (!t) return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(t);
  if (!m) return null;
  const frac = (m[3] ?? "").padEnd(3, "0").slice(0, 3);
  const ms = Date.parse(`${m[1]}T${m[2]}.${frac}${m[4] ?? "Z"}`);
  return Number.isFinite(ms) ? ms : null;
}

/** Epoch seconds (Python's `reset_at`, `blocked_at`) as ms. */
const epochSeconds = (v: unknown): number | null => {
  const n = numeric(v);
  if (n === null || n <= 0) return null;
  return n > 1e12 ? Math.round(n) : Math.round(n * 1000);
};

/** `allowed_models`: a JSON list or comma-separated text; null or empty = every model. */
export function parseAllowedModels(v: unknown): string[] | null {
  const t = text(v);
  if (!t) return null;
  let list: unknown[] = [];
  if (t.startsWith("[")) {
    try {
      const parsed = JSON.parse(t);
      list = Array.isArray(parsed) ? parsed : [];
    } catch {
      list = [];
    }
  } else list = t.split(",");
  const models = [...new Set(list.map((m) => String(m).trim()).filter((m) => m !== ""))];
  return models.length > 0 ? models : null;
}

const WINDOWS: Readonly<Record<string, LimitWindow>> = {
  daily: "daily",
  weekly: "weekly",
  "7d": "weekly",
  monthly: "monthly",
  "5h": "5h",
};
const STICKY_KINDS: Readonly<Record<string, StickyKind>> = {
  codex_session: "session",
  sticky_thread: "thread",
  prompt_cache: "prompt_cache",
};

/** Decrypts the Python store's secrets with `key` and maps every row; throws when the key is wrong. */
export async function planImport(
  snap: PythonSnapshot,
  key: FernetKey,
  opts: { now: number; keyPath: string },
): Promise<ImportPlan> {
  const skipped: Skipped[] = [];
  const notes: string[] = [];
  const skip = (kind: ItemKind, item: string, reason: string) => skipped.push({ kind, item, reason });
  let decrypted = 0;
  let wrongMac = 0;
  const open = async (v: unknown): Promise<string | { error: string }> => {
    const bytes = v instanceof Uint8Array ? v : typeof v === "string" ? v : null;
    if (bytes === null || (typeof bytes === "string" && bytes.trim() === "")) return { error: "is empty" };
    try {
      const plain = await key.decrypt(bytes);
      decrypted++;
      return plain;
    } catch (e) {
      if (e instanceof FernetError && e.reason === "mac") {
        wrongMac++;
        return { error: "does not decrypt with the key (signature mismatch)" };
      }
      return { error: "is not a valid Fernet token" };
    }
  };

  // ---------------------------------------------------------------- accounts
  const accounts: PlannedAccount[] = [];
  for (const r of snap.accounts) {
    const id = text(r.id) ?? "(no id)";
    if (text(r.delete_requested_at)) {
      skip("account", id, "being deleted in the Python codex-lb (delete_requested_at is set)");
      continue;
    }
    const access = await open(r.access_token_encrypted);
    const refresh = await open(r.refresh_token_encrypted);
    const idTok = await open(r.id_token_encrypted);
    const bad = (
      [
        ["access token", access],
        ["refresh token", refresh],
        ["id token", idTok],
      ] as const
    ).find(([, v]) => typeof v !== "string");
    if (bad) {
      skip(
        "account",
        id,
        `its ${bad[0]} ${(bad[1] as { error: string }).error}; log it in again after the import`,
      );
      continue;
    }
    const tokens = {
      accessToken: access as string,
      refreshToken: refresh as string,
      idToken: idTok as string,
    };
    const fromTokens = identityFromTokens(tokens.idToken, tokens.accessToken);
    const rawStatus = text(r.status)?.toLowerCase() ?? "active";
    const status = (accountStatuses as readonly string[]).includes(rawStatus)
      ? (rawStatus as AccountStatus)
      : null;
    if (!status) {
      skip("account", id, `unknown status ${JSON.stringify(rawStatus)}`);
      continue;
    }
    const rawPolicy = text(r.routing_policy)?.toLowerCase() ?? "normal";
    const routingPolicy = (routingPolicies as readonly string[]).includes(rawPolicy)
      ? (rawPolicy as RoutingPolicy)
      : "normal";
    if (rawPolicy !== routingPolicy)
      notes.push(`account ${id}: routing policy ${JSON.stringify(rawPolicy)} is unknown here; set to normal`);
    accounts.push({
      pythonId: id,
      chatgptAccountId: text(r.chatgpt_account_id) ?? fromTokens.chatgptAccountId,
      chatgptUserId: text(r.chatgpt_user_id) ?? fromTokens.chatgptUserId,
      email: text(r.email)?.toLowerCase() ?? fromTokens.email,
      alias: text(r.alias),
      planType: text(r.plan_type)?.toLowerCase() ?? fromTokens.planType,
      routingPolicy,
      installationId: text(r.codex_installation_id),
      ...tokens,
      lastRefreshAt: pyDatetime(r.last_refresh),
      status,
      statusReason: text(r.deactivation_reason),
      resetAt: epochSeconds(r.reset_at),
      blockedAt: epochSeconds(r.blocked_at),
      createdAt: pyDatetime(r.created_at),
    });
  }

  // ---------------------------------------------------------------- admin (TOTP secret is encrypted)
  const s = snap.settings;
  let passwordHash = text(s?.password_hash);
  if (!passwordHash) {
    const admin = snap.dashboardUsers.find(
      (u) => text(u.password_hash) && (text(u.status) ?? "active") === "active",
    );
    if (admin) {
      passwordHash = text(admin.password_hash);
      notes.push(
        `admin password: taken from dashboard user ${JSON.stringify(text(admin.username) ?? text(admin.id))} (codex-lb has one admin)`,
      );
    }
  }
  if (passwordHash && !/^\$2[abxy]?\$\d{2}\$/.test(passwordHash) && !passwordHash.startsWith("$argon2")) {
    skip(
      "admin",
      "password",
      "the stored hash is neither bcrypt nor argon2; set a new password after the import",
    );
    passwordHash = null;
  }
  let totpSecret: string | null = null;
  const totpEnc = s?.totp_secret_encrypted;
  if (totpEnc !== null && totpEnc !== undefined) {
    const secret = await open(totpEnc);
    if (typeof secret !== "string") skip("admin", "totp", `the TOTP secret ${secret.error}`);
    else if (bool(s?.totp_required_on_login) === false)
      skip("admin", "totp", "TOTP was set up but not required at login in the Python codex-lb; left off");
    else if (!passwordHash) skip("admin", "totp", "TOTP needs an admin password, and none was imported");
    else totpSecret = secret.replace(/[\s=]/g, "").toUpperCase();
  }
  if (totpSecret) notes.push("TOTP imported without recovery codes: create new ones by enrolling TOTP again");

  // A wrong key signs nothing: refuse before anything is planned as written.
  if (wrongMac > 0 && decrypted === 0) {
    throw new ImportSourceError(
      `the key ${opts.keyPath} does not decrypt the Python store's secrets (is it that install's encryption.key?); nothing was written`,
      "wrong_key",
    );
  }

  // ---------------------------------------------------------------- API keys and limits
  const limitsByKey = new Map<string, Row[]>();
  for (const l of snap.apiKeyLimits) {
    const k = text(l.api_key_id) ?? "";
    const list = limitsByKey.get(k);
    if (list) list.push(l);
    else limitsByKey.set(k, [l]);
  }
  const apiKeys: PlannedApiKey[] = [];
  let anyCurrent = false;
  for (const r of snap.apiKeys) {
    const id = text(r.id) ?? "(no id)";
    const hash = text(r.key_hash)?.toLowerCase() ?? "";
    const prefix = text(r.key_prefix) ?? "";
    const label = `${prefix || id} (${text(r.name) ?? "unnamed"})`;
    if (!/^[0-9a-f]{64}$/.test(hash)) {
      skip("api_key", label, "its key_hash is not a SHA-256 hex digest");
      continue;
    }
    if (!prefix.startsWith(API_KEY_PREFIX) || prefix.length < KEY_PREFIX_LENGTH) {
      skip(
        "api_key",
        label,
        `its key_prefix is not ${KEY_PREFIX_LENGTH} characters of an ${API_KEY_PREFIX} key`,
      );
      continue;
    }
    for (const col of [
      "enforced_model",
      "enforced_reasoning_effort",
      "allowed_reasoning_efforts",
      "enforced_service_tier",
    ]) {
      const v = text(r[col]);
      if (v)
        skip(
          "api_key",
          `${label} ${col}`,
          `${col}=${JSON.stringify(v)} has no equivalent here; the key is imported without it`,
        );
    }
    const limits: LimitSpec[] = [];
    for (const l of limitsByKey.get(id) ?? []) {
      const type = text(l.limit_type)?.toLowerCase() ?? "";
      const win = text(l.limit_window)?.toLowerCase() ?? "";
      const max = numeric(l.max_value);
      const what = `${label} ${type}/${win}`;
      if (!(limitTypes as readonly string[]).includes(type)) {
        skip(
          "limit",
          what,
          `limit type ${JSON.stringify(type)} is not supported (only ${limitTypes.join(", ")})`,
        );
        continue;
      }
      const window = WINDOWS[win];
      if (!window) {
        skip(
          "limit",
          what,
          `limit window ${JSON.stringify(win)} is not supported (only 5h, daily, weekly/7d, monthly)`,
        );
        continue;
      }
      if (text(l.model_filter)) {
        skip(
          "limit",
          what,
          `per-model limits (model_filter=${JSON.stringify(text(l.model_filter))}) are not supported`,
        );
        continue;
      }
      if (max === null || max <= 0) {
        skip("limit", what, "its max_value is not a positive number");
        continue;
      }
      if ((numeric(l.current_value) ?? 0) > 0) anyCurrent = true;
      limits.push({
        limitType: type as LimitType,
        limitWindow: window,
        maxValue: type === "cost_usd" ? max / 1_000_000 : max,
      });
    }
    apiKeys.push({
      pythonId: id,
      name: (text(r.name) ?? "imported key").slice(0, 128),
      keyHash: hash,
      keyPrefix: prefix.slice(0, KEY_PREFIX_LENGTH),
      isActive: bool(r.is_active) ?? true,
      expiresAt: pyDatetime(r.expires_at),
      allowedModels: parseAllowedModels(r.allowed_models),
      createdAt: pyDatetime(r.created_at) ?? opts.now,
      lastUsedAt: pyDatetime(r.last_used_at),
      limits,
    });
  }
  const keyIds = new Set(snap.apiKeys.map((k) => text(k.id)));
  for (const [keyId, rows] of limitsByKey) {
    if (!keyIds.has(keyId))
      for (const l of rows) skip("limit", `${keyId} ${text(l.limit_type)}`, "its API key does not exist");
  }
  if (anyCurrent)
    notes.push(
      "API-key limit counters restart: usage is counted here from this gateway's request logs, windows anchored at each key's creation hour",
    );

  // ---------------------------------------------------------------- firewall
  const firewall: string[] = [];
  for (const r of snap.firewall) {
    const raw = text(r.ip_address) ?? "";
    const entry = normalizeEntry(raw);
    if (!entry) skip("firewall", raw || "(empty)", "not an IPv4/IPv6 address");
    else if (!firewall.includes(entry)) firewall.push(entry);
  }

  // ---------------------------------------------------------------- runtime settings
  const settings: ImportPlan["settings"] = {};
  if (s) {
    const strategy = text(s.routing_strategy)?.toLowerCase();
    if (strategy && (routingStrategies as readonly string[]).includes(strategy))
      settings.routingStrategy = strategy as (typeof routingStrategies)[number];
    else if (strategy)
      skip(
        "setting",
        "routing_strategy",
        `${JSON.stringify(strategy)} is not a strategy here (${routingStrategies.join(", ")}); the default stays`,
      );
    const ttl = numeric(s.openai_cache_affinity_max_age_seconds);
    if (ttl !== null && ttl >= 1) settings.stickyTtlSeconds = Math.min(Math.round(ttl), 30 * 24 * 3600);
    const auth = bool(s.api_key_auth_enabled);
    if (auth !== null) settings.apiKeyAuthEnabled = auth;
  }
  const ttlMs = (settings.stickyTtlSeconds ?? 1800) * 1000;

  // ---------------------------------------------------------------- sticky sessions
  const importedAccounts = new Set(accounts.map((a) => a.pythonId));
  const sticky: PlannedSticky[] = [];
  const stickyKeys = new Set<string>();
  for (const r of snap.sticky) {
    const key = text(r.key) ?? "";
    const rawKind = text(r.kind)?.toLowerCase() ?? "";
    const accountId = text(r.account_id) ?? "";
    const what = `${rawKind}:${key.slice(0, 40)}`;
    const provider = text(r.provider_kind);
    if (provider && provider !== "chatgpt_web") {
      skip(
        "sticky_session",
        what,
        `a binding of provider ${provider} (codex-lb pools ChatGPT accounts only)`,
      );
      continue;
    }
    const kind = STICKY_KINDS[rawKind];
    if (!kind) {
      skip("sticky_session", what, `kind ${JSON.stringify(rawKind)} is not used here`);
      continue;
    }
    if (!key || key.length > MAX_STICKY_KEY) {
      skip("sticky_session", what, `the key is empty or longer than ${MAX_STICKY_KEY} characters`);
      continue;
    }
    if (!importedAccounts.has(accountId)) {
      skip("sticky_session", what, `its account ${accountId} is not imported`);
      continue;
    }
    const updatedAt = pyDatetime(r.updated_at) ?? pyDatetime(r.created_at) ?? opts.now;
    if (updatedAt + ttlMs <= opts.now) {
      skip("sticky_session", what, "expired (last used longer ago than the sticky TTL)");
      continue;
    }
    if (stickyKeys.has(key)) {
      skip("sticky_session", what, "another kind already binds the same key");
      continue;
    }
    stickyKeys.add(key);
    sticky.push({
      key,
      kind,
      pythonAccountId: accountId,
      createdAt: pyDatetime(r.created_at) ?? updatedAt,
      updatedAt,
      expiresAt: updatedAt + ttlMs,
    });
  }

  if (snap.missingTables.length > 0)
    notes.push(
      `tables absent from this Python store (nothing to import there): ${snap.missingTables.join(", ")}`,
    );

  return {
    accounts,
    apiKeys,
    firewall,
    sticky,
    settings,
    admin: { passwordHash, totpSecret, totpLastStep: numeric(s?.totp_last_verified_step) },
    skipped,
    notes,
    ignoredWithRows: snap.ignoredWithRows,
  };
}
