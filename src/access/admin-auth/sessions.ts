/**
 * Server-side admin sessions: a random token in an HttpOnly, SameSite=Strict cookie; the store keeps
 * only its SHA-256. A session ends at logout, at a password change (all of them), after
 * `adminSessionIdleSeconds` without use, or `adminSessionMaxSeconds` after login.
 *
 * @module
 */
import type { Kysely } from "kysely";
import { randomToken, sha256Hex } from "../../core/crypto.ts";
import { type AuditEntry, audited } from "../../store/audit.ts";
import type { Database } from "../../store/schema.ts";

export const SESSION_COOKIE = "codex_lb_session";

/** last_seen_at is written at most this often per session (keeps reads cheap). */
const TOUCH_EVERY_MS = 15_000;

export interface SessionPolicy {
  readonly idleMs: number;
  readonly maxMs: number;
}

/** The value of one cookie in a Cookie header, or null. */
export function readCookie(headers: Headers, name: string): string | null {
  const raw = headers.get("cookie");
  if (!raw) return null;
  for (const part of raw.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      // A malformed escape (`%`) names no session: treated as no cookie, never a 500.
      return null;
    }
  }
  return null;
}

/** The Set-Cookie value for a new session (Secure when the request came over https). */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeSeconds)}${secure ? "; Secure" : ""}`;
}

/** The Set-Cookie value that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? "; Secure" : ""}`;
}

export class SessionStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly policy: SessionPolicy,
  ) {}

  /** Creates a session; returns the token for the cookie (never stored). */
  async create(clientIp: string | null, now: number): Promise<string> {
    const token = randomToken(32);
    await this.db
      .insertInto("admin_sessions")
      .values({
        id_hash: await sha256Hex(token),
        created_at: now,
        last_seen_at: now,
        expires_at: now + this.policy.maxMs,
        client_ip: clientIp,
      })
      .execute();
    // Expired rows of other sessions are swept here: logins are rare, so this costs nothing.
    await this.db
      .deleteFrom("admin_sessions")
      .where((eb) => eb.or([eb("expires_at", "<=", now), eb("last_seen_at", "<=", now - this.policy.idleMs)]))
      .execute();
    return token;
  }

  /** True when `token` names a live session; refreshes its idle timer. */
  async check(token: string | null, now: number): Promise<boolean> {
    if (!token || token.length > 200) return false;
    const idHash = await sha256Hex(token);
    const row = await this.db
      .selectFrom("admin_sessions")
      .selectAll()
      .where("id_hash", "=", idHash)
      .executeTakeFirst();
    if (!row) return false;
    if (row.expires_at <= now || row.last_seen_at + this.policy.idleMs <= now) {
      await this.db.deleteFrom("admin_sessions").where("id_hash", "=", idHash).execute();
      return false;
    }
    if (now - row.last_seen_at >= TOUCH_EVERY_MS) {
      await this.db
        .updateTable("admin_sessions")
        .set({ last_seen_at: now })
        .where("id_hash", "=", idHash)
        .execute();
    }
    return true;
  }

  /** Ends one session (logout). */
  async revoke(token: string | null): Promise<void> {
    if (!token) return;
    await this.db
      .deleteFrom("admin_sessions")
      .where("id_hash", "=", await sha256Hex(token))
      .execute();
  }

  /** Ends every session (password change); `audit`: written in the same transaction. */
  async revokeAll(audit?: AuditEntry, db: Kysely<Database> = this.db): Promise<void> {
    await audited(db, (trx) => trx.deleteFrom("admin_sessions").execute(), audit);
  }
}
