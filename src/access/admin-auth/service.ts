/**
 * Admin authentication: the first password (from this machine, or remotely with the one-time
 * bootstrap token printed at start), login with optional TOTP or a recovery code, password change,
 * TOTP enrolment. Every credential check is counted by the attempt limiter before it runs and
 * refunded only when the credential is right.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { constantTimeEqual, randomToken, sha256Hex } from "../../core/crypto.ts";
import { GatewayError } from "../../core/errors.ts";
import type { Logger } from "../../core/logging.ts";
import { hashPassword, verifyPassword } from "../../runtime/bun/password.ts";
import { type AuditEntry, audited } from "../../store/audit.ts";
import type { Database } from "../../store/schema.ts";
import type { AttemptCounter } from "./attempts.ts";
import {
  claimTotpStep,
  consumeRecoveryCode,
  readCredentials,
  setFirstPasswordHash,
  writeCredentials,
} from "./credentials.ts";
import { checkPasswordRules, newRecoveryCode, normalizeRecovery, RECOVERY_CODES } from "./rules.ts";
import type { SessionStore } from "./sessions.ts";
import { newTotpSecret, otpauthUri, verifyTotp } from "./totp.ts";

export interface Actor {
  readonly clientIp: string | null;
  readonly local: boolean;
}

/** Encrypts secrets at rest (the accounts' TokenCipher, AES-256-GCM under the data dir's key). */
export interface SecretCipher {
  encrypt(plain: string): Promise<Uint8Array>;
  decrypt(blob: Uint8Array): Promise<string>;
}

/** Stored form of a sealed TOTP secret: a marker, then the cipher's blob in base64. */
const SEALED = "enc:v1:";

/** A secret in its stored, sealed form (also used by the Python codex-lb import). */
export async function sealSecret(cipher: SecretCipher, secret: string): Promise<string> {
  return SEALED + Buffer.from(await cipher.encrypt(secret)).toString("base64");
}

/** True for a hash to replace with argon2id after the next successful login (an imported bcrypt one). */
export function needsRehash(hash: string): boolean {
  return !hash.startsWith("$argon2id$");
}

export class AdminAuth {
  constructor(
    private readonly db: Kysely<Database>,
    readonly sessions: SessionStore,
    readonly limiter: AttemptCounter,
    private readonly log: Logger,
    private readonly clock: () => number,
    private readonly cipher: SecretCipher,
  ) {}

  #seal(secret: string): Promise<string> {
    return sealSecret(this.cipher, secret);
  }

  /** The plain secret; a value stored before secrets were sealed is used as it is. */
  async #open(stored: string): Promise<string> {
    return stored.startsWith(SEALED)
      ? this.cipher.decrypt(new Uint8Array(Buffer.from(stored.slice(SEALED.length), "base64")))
      : stored;
  }

  async state(): Promise<{ passwordSet: boolean; totpEnabled: boolean }> {
    const c = await readCredentials(this.db);
    return { passwordSet: c.password_hash !== null, totpEnabled: c.totp_secret !== null };
  }

  /**
   * At start-up while no password exists: makes a fresh one-time bootstrap token, stores its hash
   * and prints it once in the log (a restart replaces it). Returns it (null when a password exists).
   */
  async issueBootstrapToken(): Promise<string | null> {
    const c = await readCredentials(this.db);
    if (c.password_hash !== null) return null;
    const token = randomToken(24);
    await writeCredentials(this.db, { bootstrap_token_hash: await sha256Hex(token) }, this.clock());
    this.log.warn(
      { bootstrapToken: token },
      "no admin password is set: from this machine set one at POST /api/auth/password; from elsewhere send this one-time bootstrapToken with it",
    );
    return token;
  }

  /** Sets the first password. Remote callers need the bootstrap token. */
  async setInitialPassword(
    actor: Actor,
    newPassword: string,
    bootstrapToken: string | undefined,
    /** The audit row, written in the same transaction as the password. */
    audit?: AuditEntry,
  ): Promise<void> {
    const now = this.clock();
    const c = await readCredentials(this.db);
    if (c.password_hash !== null)
      throw new GatewayError("conflict", "An admin password is already set; change it with currentPassword");
    if (!actor.local) {
      const attempt = await this.limiter.begin(actor.clientIp, now);
      const ok =
        bootstrapToken !== undefined &&
        c.bootstrap_token_hash !== null &&
        constantTimeEqual(await sha256Hex(bootstrapToken), c.bootstrap_token_hash);
      if (ok) attempt.succeeded();
      else {
        throw new GatewayError(
          "authentication_required",
          "Setting the first password from another machine needs the bootstrap token printed in the gateway's log",
        );
      }
    }
    checkPasswordRules(newPassword);
    const hash = await hashPassword(newPassword);
    const set = await audited(
      this.db,
      (trx) => setFirstPasswordHash(trx, hash, this.clock()),
      (ok) => (ok ? (audit ?? null) : null),
    );
    if (!set)
      throw new GatewayError("conflict", "An admin password is already set; change it with currentPassword");
  }

  /** Verifies password (+ TOTP or recovery code when TOTP is on); returns a new session token. */
  async login(
    actor: Actor,
    input: { password: string; totpCode?: string | undefined; recoveryCode?: string | undefined },
  ): Promise<string> {
    const now = this.clock();
    const c = await readCredentials(this.db);
    if (c.password_hash === null) throw new GatewayError("password_not_configured");
    // Counted before the hash is checked: parallel guesses cannot outrun the limit.
    const attempt = await this.limiter.begin(actor.clientIp, now);
    if (!(await verifyPassword(input.password, c.password_hash)))
      throw new GatewayError("invalid_credentials", "Wrong password");
    if (c.totp_secret !== null)
      await this.#secondFactor(await this.#open(c.totp_secret), c.totp_last_step, input, now);
    attempt.succeeded();
    if (needsRehash(c.password_hash)) await this.#rehash(c.password_hash, input.password);
    return this.sessions.create(actor.clientIp, this.clock());
  }

  /** Replaces an imported (bcrypt) hash with argon2id, unless the password changed meanwhile. */
  async #rehash(oldHash: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    const res = await this.db
      .updateTable("admin_credentials")
      .set({ password_hash: hash, updated_at: this.clock() })
      .where("id", "=", 1)
      .where("password_hash", "=", oldHash)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1) this.log.info({}, "admin password hash upgraded to argon2id");
  }

  /** Checks a TOTP or recovery code; the caller has counted the attempt. */
  async #secondFactor(
    secret: string,
    lastStep: number | null,
    input: { totpCode?: string | undefined; recoveryCode?: string | undefined },
    now: number,
  ): Promise<void> {
    if (input.totpCode) {
      const step = await verifyTotp(secret, input.totpCode, now, lastStep);
      if (step !== null && (await claimTotpStep(this.db, step, now))) return;
      throw new GatewayError("invalid_credentials", "Invalid or already used TOTP code");
    }
    if (input.recoveryCode) {
      const hash = await sha256Hex(normalizeRecovery(input.recoveryCode));
      if (await consumeRecoveryCode(this.db, hash, now)) return;
      throw new GatewayError("invalid_credentials", "Invalid or already used recovery code");
    }
    throw new GatewayError("totp_required");
  }

  /** Changes the password after checking the current one; ends every session. */
  async changePassword(
    actor: Actor,
    currentPassword: string | undefined,
    newPassword: string,
    audit?: AuditEntry,
  ): Promise<void> {
    const now = this.clock();
    const c = await readCredentials(this.db);
    if (c.password_hash === null) throw new GatewayError("password_not_configured");
    const attempt = await this.limiter.begin(actor.clientIp, now);
    if (currentPassword === undefined || !(await verifyPassword(currentPassword, c.password_hash)))
      throw new GatewayError("invalid_credentials", "currentPassword is wrong or missing");
    attempt.succeeded();
    checkPasswordRules(newPassword);
    const hash = await hashPassword(newPassword);
    // The new hash, the end of every session and the audit row: one transaction.
    await audited(
      this.db,
      async (trx) => {
        await writeCredentials(trx, { password_hash: hash }, this.clock());
        await this.sessions.revokeAll(undefined, trx);
      },
      audit,
    );
  }

  /** Starts TOTP enrolment: a new pending secret (TOTP stays off until confirmed). */
  async totpSetup(audit?: AuditEntry): Promise<{ secret: string; otpauthUri: string }> {
    const c = await readCredentials(this.db);
    if (c.password_hash === null)
      throw new GatewayError("password_not_configured", "Set an admin password before enabling TOTP");
    if (c.totp_secret !== null)
      throw new GatewayError("conflict", "TOTP is already enabled; disable it first");
    const secret = newTotpSecret();
    const sealed = await this.#seal(secret);
    await audited(
      this.db,
      (trx) => writeCredentials(trx, { totp_pending_secret: sealed }, this.clock()),
      audit,
    );
    return { secret, otpauthUri: otpauthUri(secret) };
  }

  /** Confirms enrolment with a current code; returns the recovery codes (shown once). */
  async totpConfirm(actor: Actor, code: string, audit?: AuditEntry): Promise<string[]> {
    const now = this.clock();
    const c = await readCredentials(this.db);
    if (c.totp_secret !== null) throw new GatewayError("conflict", "TOTP is already enabled");
    if (c.totp_pending_secret === null)
      throw new GatewayError("conflict", "Start with POST /api/auth/totp/setup");
    const attempt = await this.limiter.begin(actor.clientIp, now);
    const step = await verifyTotp(await this.#open(c.totp_pending_secret), code, now, null);
    if (step === null) throw new GatewayError("invalid_totp_code");
    attempt.succeeded();
    const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
    const hashes = await Promise.all(codes.map((r) => sha256Hex(normalizeRecovery(r))));
    const pending = c.totp_pending_secret;
    await audited(
      this.db,
      (trx) =>
        writeCredentials(
          trx,
          {
            totp_secret: pending,
            totp_pending_secret: null,
            totp_last_step: step,
            recovery_codes: JSON.stringify(hashes),
          },
          now,
        ),
      audit,
    );
    return codes;
  }

  /** Turns TOTP off; needs a current code or a recovery code. */
  async totpDisable(
    actor: Actor,
    input: { code?: string | undefined; recoveryCode?: string | undefined },
    audit?: AuditEntry,
  ) {
    const now = this.clock();
    const c = await readCredentials(this.db);
    if (c.totp_secret === null) throw new GatewayError("conflict", "TOTP is not enabled");
    const attempt = await this.limiter.begin(actor.clientIp, now);
    try {
      await this.#secondFactor(
        await this.#open(c.totp_secret),
        c.totp_last_step,
        { totpCode: input.code, recoveryCode: input.recoveryCode },
        now,
      );
    } catch (e) {
      // On an authenticated route a 401 would read as "session gone": a bad code is a 400 here.
      if (e instanceof GatewayError && (e.code === "totp_required" || e.code === "invalid_credentials"))
        throw new GatewayError("invalid_totp_code");
      throw e;
    }
    attempt.succeeded();
    await audited(
      this.db,
      (trx) =>
        writeCredentials(
          trx,
          { totp_secret: null, totp_pending_secret: null, totp_last_step: null, recovery_codes: null },
          this.clock(),
        ),
      audit,
    );
  }
}
