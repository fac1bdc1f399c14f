/**
 * The audit trail: one row in `audit_logs` per admin change (API keys, accounts, settings, firewall,
 * password, TOTP) and per login. Other areas call {@link audit} from their admin routes.
 *
 * @module
 */
import { type AuditEntry, audit } from "../store/audit.ts";

export { type AuditEntry, audit };

/** Shortcut for routes: the actor address and request id of a request. */
export function auditContext(info: { clientIp: string | null; requestId: string }): {
  actorIp: string | null;
  requestId: string;
} {
  return { actorIp: info.clientIp, requestId: info.requestId };
}
