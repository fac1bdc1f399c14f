/**
 * Fernet decryption (https://github.com/fernet/spec) with WebCrypto, for reading the Python
 * codex-lb's encrypted columns. A key is URL-safe base64 of 32 bytes: the first 16 sign
 * (HMAC-SHA256), the last 16 encrypt (AES-128-CBC, PKCS#7). A token is URL-safe base64 of
 * `0x80 ‖ timestamp (8) ‖ iv (16) ‖ ciphertext ‖ hmac (32)`. Tokens never expire here: the
 * import reads data at rest, whatever its age.
 *
 * @module
 */

/** Why a token was not decrypted: `mac` is what a wrong key gives. */
export class FernetError extends Error {
  override name = "FernetError";
  constructor(readonly reason: "format" | "mac") {
    super(reason === "mac" ? "Fernet token signature does not match the key" : "not a Fernet token");
  }
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  const t = text.trim();
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(t)) return null;
  return new Uint8Array(Buffer.from(t, "base64url"));
}

/** True when `text` is a Fernet key (URL-safe base64 of 32 bytes, padded or not). */
export function isFernetKey(text: string): boolean {
  const t = text.trim();
  return /^[A-Za-z0-9_-]{43}=?$/.test(t) && fromBase64Url(t)?.length === 32;
}

/** One Fernet key, ready to decrypt tokens. */
export class FernetKey {
  readonly #sign: Promise<CryptoKey>;
  readonly #enc: Promise<CryptoKey>;

  private constructor(raw: Uint8Array<ArrayBuffer>) {
    this.#sign = crypto.subtle.importKey("raw", raw.slice(0, 16), { name: "HMAC", hash: "SHA-256" }, false, [
      "verify",
    ]);
    this.#enc = crypto.subtle.importKey("raw", raw.slice(16), { name: "AES-CBC" }, false, ["decrypt"]);
  }

  /** Parses the key file's text; null when it is not a Fernet key. */
  static parse(text: string): FernetKey | null {
    if (!isFernetKey(text)) return null;
    return new FernetKey(fromBase64Url(text)!);
  }

  /** Decrypts a token (text, or the bytes of its ASCII form as SQLAlchemy stores it). */
  async decrypt(token: string | Uint8Array): Promise<string> {
    const text = typeof token === "string" ? token : new TextDecoder().decode(token);
    const bytes = fromBase64Url(text);
    if (
      !bytes ||
      bytes.length < 1 + 8 + 16 + 16 + 32 ||
      bytes[0] !== 0x80 ||
      (bytes.length - 57) % 16 !== 0
    ) {
      throw new FernetError("format");
    }
    const body = bytes.subarray(0, bytes.length - 32);
    const mac = bytes.subarray(bytes.length - 32);
    // crypto.subtle.verify compares in constant time.
    if (!(await crypto.subtle.verify("HMAC", await this.#sign, mac, body))) throw new FernetError("mac");
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-CBC", iv: bytes.slice(9, 25) },
        await this.#enc,
        bytes.slice(25, bytes.length - 32),
      );
      return new TextDecoder("utf-8", { fatal: true }).decode(plain);
    } catch {
      throw new FernetError("format");
    }
  }
}
