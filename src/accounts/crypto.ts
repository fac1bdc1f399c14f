/**
 * Token encryption at rest: AES-256-GCM (WebCrypto) under one key kept in
 * `<data dir>/encryption.key` (32 random bytes, base64, mode 0600), created on first start.
 * A blob is `0x01 ‖ iv (12 bytes) ‖ ciphertext+tag`; the leading byte leaves room for a new format.
 *
 * @module
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { refuseForeignKey } from "../store/foreign.ts";
import type { Database } from "../store/schema.ts";

const FORMAT = 1;
const IV_BYTES = 12;

/** The file name of the key inside the data dir. */
export const KEY_FILE = "encryption.key";

/**
 * Reads the key file, creating it (mode 0600) when absent. Throws with the path (never the key)
 * when the file exists but does not hold a 32-byte base64 key, and `ForeignDataError` when it is
 * the Python codex-lb's Fernet key (which is never used nor written).
 */
export function loadOrCreateKey(dataDir: string): Uint8Array {
  const path = join(dataDir, KEY_FILE);
  refuseForeignKey(path);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    const fresh = crypto.getRandomValues(new Uint8Array(32));
    // `wx` fails when the file exists, so two processes starting at once keep one key.
    writeFileSync(path, `${Buffer.from(fresh).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const raw = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
  if (raw.length !== 32) throw new Error(`${path} does not hold a 32-byte base64 key`);
  return new Uint8Array(raw);
}

/** Encrypts and decrypts token strings with one AES-256-GCM key. */
export class TokenCipher {
  readonly #key: Promise<CryptoKey>;

  constructor(rawKey: Uint8Array) {
    this.#key = crypto.subtle.importKey("raw", new Uint8Array(rawKey), { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
  }

  /** Opens the cipher of a data dir, creating its key on first use. */
  static forDataDir(dataDir: string): TokenCipher {
    return new TokenCipher(loadOrCreateKey(dataDir));
  }

  async encrypt(plain: string): Promise<Uint8Array> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await this.#key, new TextEncoder().encode(plain)),
    );
    const out = new Uint8Array(1 + IV_BYTES + sealed.length);
    out[0] = FORMAT;
    out.set(iv, 1);
    out.set(sealed, 1 + IV_BYTES);
    return out;
  }

  /** Decrypts a blob; throws a message without any secret when the key or blob is wrong. */
  async decrypt(blob: Uint8Array): Promise<string> {
    const bytes = new Uint8Array(blob);
    if (bytes[0] !== FORMAT || bytes.length < 1 + IV_BYTES + 16) throw new Error("unknown token blob format");
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes.subarray(1, 1 + IV_BYTES) },
        await this.#key,
        bytes.subarray(1 + IV_BYTES),
      );
      return new TextDecoder().decode(plain);
    } catch {
      throw new Error(`cannot decrypt a stored token: is ${KEY_FILE} the key it was written with?`);
    }
  }
}

/**
 * True when `cipher` opens the tokens already in the store (or the store holds none). Replicas on
 * one database must share one key: one that cannot decrypt what another wrote would fail every
 * request of those accounts, so start-up refuses it instead.
 */
export async function keyOpensStore(db: Kysely<Database>, cipher: TokenCipher): Promise<boolean> {
  const row = await db
    .selectFrom("accounts")
    .select("refresh_token_enc")
    .where("refresh_token_enc", "is not", null)
    .limit(1)
    .executeTakeFirst();
  if (!row?.refresh_token_enc) return true;
  try {
    await cipher.decrypt(row.refresh_token_enc);
    return true;
  } catch {
    return false;
  }
}
