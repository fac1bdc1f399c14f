/**
 * The OAuth calls a login makes against the OpenAI auth server (`CODEX_LB_AUTH_BASE_URL`):
 * the authorize URL with PKCE, the authorization-code exchange, and the device-code endpoints.
 * Every failure is an {@link OAuthError} whose message never holds a token or code.
 *
 * @module
 */

import { OAUTH_CLIENT_ID } from "../core/codex.ts";
import { randomToken } from "../core/crypto.ts";
import { parseErrorBody, readErrorFields } from "../core/failures.ts";
import type { TokenSet } from "../plugin-host/api.ts";

/** The only redirect the auth server accepts for this client. */
export const OAUTH_REDIRECT_URI = "http://localhost:1455/auth/callback";
/** Scopes asked for at login (`offline_access` for a refresh token). */
export const OAUTH_SCOPE = "openid profile email offline_access";
/** The `originator` the authorize URL carries. */
export const OAUTH_ORIGINATOR = "codex_chatgpt_desktop";
const TIMEOUT_MS = 30_000;

/** A login failure: `code` from the auth server (or ours), a message safe to show the operator. */
export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");

/** PKCE: a 43-char verifier and its S256 challenge. */
export async function createPkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomToken(32);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

/** The URL the operator opens to sign in (PKCE S256, the Codex CLI's client and redirect). */
export function authorizeUrl(authBaseUrl: string, challenge: string, state: string): string {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: OAUTH_CLIENT_ID,
    redirect_uri: OAUTH_REDIRECT_URI,
    scope: OAUTH_SCOPE,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
    id_token_add_organizations: "true",
    codex_cli_simplified_flow: "true",
    originator: OAUTH_ORIGINATOR,
  });
  return `${authBaseUrl}/oauth/authorize?${q.toString().replace(/\+/g, "%20")}`;
}

async function call(
  url: string,
  init: RequestInit,
  what: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    throw new OAuthError(
      "transport_error",
      `${what}: the auth server did not answer (${e instanceof Error ? e.name : "error"})`,
    );
  }
  const text = await res.text();
  return { status: res.status, body: parseErrorBody(text) };
}

function failure(status: number, body: Record<string, unknown>, what: string): OAuthError {
  const f = readErrorFields(body);
  return new OAuthError(
    f.code ?? `http_${status}`,
    `${what} failed (${status})${f.message ? `: ${f.message.slice(0, 200)}` : ""}`,
  );
}

function tokensOf(body: Record<string, unknown>): TokenSet | null {
  const s = (k: string) => (typeof body[k] === "string" && body[k] !== "" ? (body[k] as string) : null);
  const accessToken = s("access_token");
  const refreshToken = s("refresh_token");
  const idToken = s("id_token");
  return accessToken && refreshToken && idToken ? { accessToken, refreshToken, idToken } : null;
}

/** Exchanges an authorization code (form-encoded POST `/oauth/token`). */
export async function exchangeCode(
  authBaseUrl: string,
  code: string,
  verifier: string,
  redirectUri = OAUTH_REDIRECT_URI,
): Promise<TokenSet> {
  const { status, body } = await call(
    `${authBaseUrl}/oauth/token`,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: OAUTH_CLIENT_ID,
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      }),
    },
    "Code exchange",
  );
  if (status >= 400) throw failure(status, body, "Code exchange");
  const tokens = tokensOf(body);
  if (!tokens) throw new OAuthError("invalid_response", "OAuth response missing tokens");
  return tokens;
}

/** A device-code login as the auth server started it. */
export interface DeviceCode {
  readonly deviceAuthId: string;
  readonly userCode: string;
  readonly intervalSeconds: number;
  readonly expiresInSeconds: number;
  readonly verificationUrl: string;
}

const seconds = (v: unknown): number | null => {
  const n = typeof v === "string" && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
};

/** Asks for a user code (POST `/api/accounts/deviceauth/usercode`). */
export async function requestDeviceCode(authBaseUrl: string, now: number): Promise<DeviceCode> {
  const { status, body } = await call(
    `${authBaseUrl}/api/accounts/deviceauth/usercode`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: OAUTH_CLIENT_ID }),
    },
    "Device code request",
  );
  if (status === 404) {
    throw new OAuthError(
      "device_auth_unavailable",
      "Device code login is not enabled on this auth server; use the browser login",
    );
  }
  if (status >= 400) throw failure(status, body, "Device code request");
  const deviceAuthId = typeof body.device_auth_id === "string" ? body.device_auth_id : null;
  const userCode =
    typeof body.user_code === "string"
      ? body.user_code
      : typeof body.usercode === "string"
        ? body.usercode
        : null;
  if (!deviceAuthId || !userCode)
    throw new OAuthError("invalid_response", "Device code answer missing device_auth_id or user_code");
  let expires = seconds(body.expires_in);
  if (!expires && typeof body.expires_at === "string") {
    const at = Date.parse(body.expires_at);
    if (Number.isFinite(at)) expires = Math.max(0, (at - now) / 1000);
  }
  return {
    deviceAuthId,
    userCode,
    // RFC 8628: 5 s when the server does not say.
    intervalSeconds: seconds(body.interval) || 5,
    expiresInSeconds: expires || 900,
    verificationUrl: `${authBaseUrl}/codex/device`,
  };
}

/** One poll's outcome: still pending (maybe slower), or tokens. */
export type DevicePoll =
  | { readonly kind: "pending"; readonly slowDown: boolean; readonly intervalSeconds: number | null }
  | { readonly kind: "tokens"; readonly tokens: TokenSet };

/** Polls once (POST `/api/accounts/deviceauth/token`); exchanges the code when it is ready. */
export async function pollDeviceToken(authBaseUrl: string, device: DeviceCode): Promise<DevicePoll> {
  const { status, body } = await call(
    `${authBaseUrl}/api/accounts/deviceauth/token`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ device_auth_id: device.deviceAuthId, user_code: device.userCode }),
    },
    "Device token poll",
  );
  const code = readErrorFields(body).code;
  const pendingStatus = typeof body.status === "string" && /^(authorization_)?pending$/i.test(body.status);
  if (code === "slow_down")
    return { kind: "pending", slowDown: true, intervalSeconds: seconds(body.interval) };
  if (status === 403 || status === 404 || code === "authorization_pending" || pendingStatus) {
    return { kind: "pending", slowDown: false, intervalSeconds: null };
  }
  if (status >= 400) throw failure(status, body, "Device login");
  const direct = tokensOf(body);
  if (direct) return { kind: "tokens", tokens: direct };
  const authCode = typeof body.authorization_code === "string" ? body.authorization_code : null;
  const verifier = typeof body.code_verifier === "string" ? body.code_verifier : null;
  if (!authCode || !verifier)
    throw new OAuthError(
      "invalid_response",
      "Device login answer missing authorization_code or code_verifier",
    );
  return {
    kind: "tokens",
    tokens: await exchangeCode(authBaseUrl, authCode, verifier, `${authBaseUrl}/deviceauth/callback`),
  };
}
