/**
 * Identity from OAuth tokens: the claims of the id_token (and the access token's `exp`). JWTs are
 * only decoded, never verified: they come straight from the auth server over TLS (or from an
 * operator's own auth.json) and are only used to label and de-duplicate accounts.
 *
 * @module
 */
import { trimmed } from "../core/coerce.ts";
import type { EpochMs } from "../core/types.ts";

/** Namespaced claim object that wins over the top-level claims. */
export const OPENAI_AUTH_CLAIM = "https://api.openai.com/auth";

type Claims = Record<string, unknown>;

/** The payload of a JWT; `{}` for anything that is not a decodable JWT (never throws). */
export function decodeJwtClaims(token: string | null | undefined): Claims {
  if (typeof token !== "string") return {};
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const json = new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
    const v = JSON.parse(json) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Claims) : {};
  } catch {
    return {};
  }
}

/** Who an account is, as read from its tokens. */
export interface Identity {
  readonly email: string | null;
  /** The ChatGPT workspace/account id (`chatgpt-account-id` upstream). */
  readonly chatgptAccountId: string | null;
  /** The seat: namespaced or top-level `chatgpt_user_id`, else `user_id`, else `sub`. */
  readonly chatgptUserId: string | null;
  readonly planType: string | null;
}

/**
 * Reads the identity from an id_token (the access token fills gaps: it carries the same
 * namespaced claims). `accountIdOverride` is an auth.json's `tokens.account_id`.
 */
export function identityFromTokens(
  idToken: string,
  accessToken?: string | null,
  accountIdOverride?: string | null,
): Identity {
  const id = decodeJwtClaims(idToken);
  const access = decodeJwtClaims(accessToken);
  const nsOf = (c: Claims): Claims => {
    const ns = c[OPENAI_AUTH_CLAIM];
    return ns && typeof ns === "object" && !Array.isArray(ns) ? (ns as Claims) : {};
  };
  const ns = nsOf(id);
  const accessNs = nsOf(access);
  // Namespaced wins, then top-level; the access token is the last resort.
  const pick = (...keys: string[]): string | null => {
    for (const source of [ns, id, accessNs]) {
      for (const k of keys) {
        const v = trimmed(source[k]);
        if (v) return v;
      }
    }
    return null;
  };
  const email =
    trimmed(id.email) ??
    trimmed(ns.email) ??
    trimmed((access["https://api.openai.com/profile"] as Claims)?.email);
  const plan = pick("chatgpt_plan_type");
  return {
    email: email ? email.toLowerCase() : null,
    chatgptAccountId: trimmed(accountIdOverride) ?? pick("chatgpt_account_id"),
    chatgptUserId: pick("chatgpt_user_id", "user_id", "chatgpt_account_user_id") ?? trimmed(id.sub),
    planType: plan ? plan.toLowerCase() : null,
  };
}

/** A token's `exp` (seconds, a number or a digit string) as epoch milliseconds, or null. */
export function tokenExpiry(token: string | null | undefined): EpochMs | null {
  const exp = decodeJwtClaims(token).exp;
  const n = typeof exp === "string" && /^\d+(\.\d+)?$/.test(exp) ? Number(exp) : exp;
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : null;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The stable local id of an identity: `<chatgpt account id>_<sha256(email)[:8]>` (so two people in
 * one workspace are two accounts), the account id alone, `email_<hash>`, or a random `local_` id.
 */
export async function localAccountId(identity: Identity): Promise<string> {
  const { chatgptAccountId: acct, email } = identity;
  if (acct && email) return `${acct}_${(await sha256Hex(email)).slice(0, 8)}`;
  if (acct) return acct;
  if (email) return `email_${(await sha256Hex(email)).slice(0, 12)}`;
  return `local_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;
}
