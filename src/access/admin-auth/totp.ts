/**
 * TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1 via WebCrypto, 6 digits, 30 s steps, ±1 step of
 * clock drift. Replay protection lives with the caller: it stores the accepted step and refuses any
 * step that is not newer.
 *
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;

/** RFC 4648 base32 without padding. */
export function base32Encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes base32 (case-insensitive, spaces and padding ignored); null on a bad character. */
export function base32Decode(text: string): Uint8Array<ArrayBuffer> | null {
  const s = text.replace(/[\s=]/g, "").toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of s) {
    const i = ALPHABET.indexOf(c);
    if (i < 0) return null;
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** A new random 160-bit secret, base32 (32 characters). */
export function newTotpSecret(): string {
  return base32Encode(crypto.getRandomValues(new Uint8Array(20)));
}

/** HOTP value for `counter` with `digits` digits (RFC 4226 dynamic truncation). */
export async function hotp(
  secret: Uint8Array<ArrayBuffer>,
  counter: number,
  digits = TOTP_DIGITS,
): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const msg = new Uint8Array(8);
  new DataView(msg.buffer).setBigUint64(0, BigInt(counter));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
  const offset = mac[mac.length - 1]! & 0x0f;
  const bin =
    ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(bin % 10 ** digits).padStart(digits, "0");
}

/** The time step of an epoch-ms instant. */
export function stepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_SECONDS);
}

/** The code for a base32 secret at `nowMs` (for tests and authenticator previews). */
export async function totpAt(secretB32: string, nowMs: number): Promise<string> {
  const secret = base32Decode(secretB32);
  if (!secret) throw new Error("invalid base32 secret");
  return hotp(secret, stepAt(nowMs));
}

/**
 * Checks `code` against the steps now-1, now, now+1 and returns the matching step newer than
 * `lastStep` (so a code is accepted once), or null.
 */
export async function verifyTotp(
  secretB32: string,
  code: string,
  nowMs: number,
  lastStep: number | null,
): Promise<number | null> {
  const digits = code.replace(/\s/g, "");
  if (!/^\d{6}$/.test(digits)) return null;
  const secret = base32Decode(secretB32);
  if (!secret) return null;
  const now = stepAt(nowMs);
  let matched: number | null = null;
  for (const step of [now - 1, now, now + 1]) {
    // Every candidate is computed (no early exit) so timing does not tell which step matched.
    if ((await hotp(secret, step)) === digits && (lastStep === null || step > lastStep)) matched ??= step;
  }
  return matched;
}

/** `otpauth://` URI for authenticator apps. */
export function otpauthUri(secretB32: string, account = "admin", issuer = "codex-lb"): string {
  const label = encodeURIComponent(`${issuer}:${account}`);
  return `otpauth://totp/${label}?secret=${secretB32}&issuer=${encodeURIComponent(issuer)}&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_STEP_SECONDS}`;
}
