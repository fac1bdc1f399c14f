/**
 * The Codex CLI's `~/.codex/auth.json`: reading one for import (snake_case or camelCase token
 * fields, `last_refresh`) and writing the Codex and OpenCode forms for export.
 *
 * @module
 */
import { trimmed } from "../core/coerce.ts";
import { GatewayError } from "../core/errors.ts";
import type { EpochMs } from "../core/types.ts";
import type { TokenSet } from "../plugin-host/api.ts";
import { tokenExpiry } from "./claims.ts";

/** The tokens (and optional account id and last refresh) of an imported auth.json. */
export interface ImportedAuth extends TokenSet {
  readonly accountId: string | null;
  readonly lastRefreshAt: EpochMs | null;
}

function invalid(message: string): GatewayError {
  return new GatewayError("invalid_auth_json", message);
}

/** Parses auth.json text; throws 400 `invalid_auth_json` naming what is missing or wrong. */
export function parseAuthJsonText(text: string): ImportedAuth {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("auth.json is not valid JSON");
  }
  return parseAuthJson(value);
}

/** Reads tokens from an auth.json value; throws 400 `invalid_auth_json` naming what is missing. */
export function parseAuthJson(value: unknown): ImportedAuth {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("auth.json must be a JSON object with a `tokens` object");
  }
  const o = value as Record<string, unknown>;
  const t = o.tokens;
  if (!t || typeof t !== "object" || Array.isArray(t)) {
    throw invalid(
      "auth.json has no `tokens` object (is it an API-key auth.json? only ChatGPT logins can be pooled)",
    );
  }
  const tok = t as Record<string, unknown>;
  const idToken = trimmed(tok.id_token) ?? trimmed(tok.idToken);
  const accessToken = trimmed(tok.access_token) ?? trimmed(tok.accessToken);
  const refreshToken = trimmed(tok.refresh_token) ?? trimmed(tok.refreshToken);
  const missing = [
    idToken ? null : "tokens.id_token",
    accessToken ? null : "tokens.access_token",
    refreshToken ? null : "tokens.refresh_token",
  ].filter((m): m is string => m !== null);
  if (missing.length > 0) throw invalid(`auth.json is missing ${missing.join(", ")}`);
  if ((idToken ?? "").split(".").length !== 3) throw invalid("tokens.id_token is not a JWT");
  const rawRefresh = o.last_refresh ?? o.lastRefresh ?? o.lastRefreshAt;
  let lastRefreshAt: EpochMs | null = null;
  if (rawRefresh !== undefined && rawRefresh !== null) {
    const ms = typeof rawRefresh === "number" ? rawRefresh : Date.parse(String(rawRefresh));
    if (!Number.isFinite(ms)) throw invalid("last_refresh is not an ISO date-time");
    lastRefreshAt = ms;
  }
  return {
    idToken: idToken!,
    accessToken: accessToken!,
    refreshToken: refreshToken!,
    accountId: trimmed(tok.account_id) ?? trimmed(tok.accountId),
    lastRefreshAt,
  };
}

/** `2026-01-02T03:04:05.123000Z`: the Codex CLI's `last_refresh` format (microseconds). */
function codexTime(ms: EpochMs): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The export answer: both file forms, plus the fields they are made of. */
export function exportForms(a: {
  id: string;
  email: string | null;
  chatgptAccountId: string | null;
  tokens: TokenSet;
  lastRefreshAt: EpochMs | null;
  now: EpochMs;
}) {
  const expiresAtMs = tokenExpiry(a.tokens.accessToken) ?? 0;
  return {
    account: { id: a.id, chatgptAccountId: a.chatgptAccountId, email: a.email },
    tokens: {
      idToken: a.tokens.idToken,
      accessToken: a.tokens.accessToken,
      refreshToken: a.tokens.refreshToken,
      expiresAtMs,
    },
    codexAuthJson: {
      auth_mode: "chatgpt" as const,
      OPENAI_API_KEY: null,
      tokens: {
        id_token: a.tokens.idToken,
        access_token: a.tokens.accessToken,
        refresh_token: a.tokens.refreshToken,
        account_id: a.chatgptAccountId,
      },
      last_refresh: codexTime(a.lastRefreshAt ?? a.now),
    },
    opencodeAuthJson: {
      openai: {
        type: "oauth" as const,
        refresh: a.tokens.refreshToken,
        access: a.tokens.accessToken,
        expires: expiresAtMs,
        accountId: a.chatgptAccountId,
      },
    },
    filename: `auth-${(a.email ?? a.id).replace(/[^A-Za-z0-9._-]+/g, "_")}.json`,
  };
}
