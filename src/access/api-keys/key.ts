/**
 * API key format and secrecy: `sk-clb-` + 43 URL-safe random characters (32 random bytes), shown
 * once; the store keeps only the SHA-256 hex of the whole key and its first 15 characters, which
 * find the candidate rows before the hashes are compared in constant time.
 *
 * @module
 */
import { randomToken, sha256Hex } from "../../core/crypto.ts";

export const API_KEY_PREFIX = "sk-clb-";
/** Length of the stored, displayable prefix (`sk-clb-` + 8 characters). */
export const KEY_PREFIX_LENGTH = 15;
export const API_KEY_PATTERN = /^sk-clb-[A-Za-z0-9_-]{43}$/;

/** A new random key. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomToken(32);
}

/** The part of a key that is stored in clear and shown in listings. */
export function keyPrefixOf(key: string): string {
  return key.slice(0, KEY_PREFIX_LENGTH);
}

export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/**
 * The key a request presents: `Authorization: Bearer <key>` (scheme case-insensitive), else
 * `x-api-key`. Null when neither carries a value.
 */
export function presentedKey(headers: Headers): string | null {
  const auth = headers.get("authorization");
  if (auth) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1]!;
  }
  const x = headers.get("x-api-key")?.trim();
  return x ? x : null;
}
