/**
 * The Bun seam for password hashing: argon2id through `Bun.password` (no 72-byte limit, unlike
 * bcrypt). Nothing else in the code base calls Bun.password.
 *
 * @module
 */

/** Hashes a password with argon2id; the result embeds its own salt and parameters. */
export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, { algorithm: "argon2id" });
}

/** True when `password` matches `hash`; false (never a throw) for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  try {
    return await Bun.password.verify(password, hash);
  } catch {
    return false;
  }
}
