/**
 * Rules for admin secrets: password length, and the shape of recovery codes.
 *
 * @module
 */

import { randomToken } from "../../core/crypto.ts";
import { GatewayError } from "../../core/errors.ts";

export const MIN_PASSWORD_LENGTH = 8;
/** Bounds the hashing work a request can cause; argon2 itself has no length limit. */
export const MAX_PASSWORD_LENGTH = 1024;
/** How many recovery codes TOTP enrolment hands out. */
export const RECOVERY_CODES = 10;

/** Throws 400 unless the password has 8 to 1024 characters (nothing is trimmed). */
export function checkPasswordRules(password: string): void {
  const n = [...password].length;
  if (n < MIN_PASSWORD_LENGTH)
    throw new GatewayError(
      "validation_error",
      `Password must be at least ${MIN_PASSWORD_LENGTH} characters`,
      {
        param: "newPassword",
      },
    );
  if (n > MAX_PASSWORD_LENGTH)
    throw new GatewayError("validation_error", `Password must be at most ${MAX_PASSWORD_LENGTH} characters`, {
      param: "newPassword",
    });
}

/** Recovery codes look like `abcd-efgh-ijkl`; compared case-insensitively without dashes. */
export function normalizeRecovery(code: string): string {
  return code.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** A random recovery code (about 62 bits). */
export function newRecoveryCode(): string {
  const raw = randomToken(12)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "")
    .padEnd(12, "x")
    .slice(0, 12);
  return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}`;
}
