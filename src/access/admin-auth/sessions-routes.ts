/**
 * `/api/auth/sessions`: the open admin sessions (never their tokens) and "log out everywhere".
 *
 * @module
 */
import { Elysia, t } from "elysia";
import { sha256Hex } from "../../core/crypto.ts";
import type { AppDeps } from "../../core/deps.ts";
import { requestInfo } from "../../core/request-info.ts";
import { auditContext } from "../../store/audit.ts";
import { clearedSessionCookie, readCookie, SESSION_COOKIE } from "./sessions.ts";

const SessionView = t.Object({
  createdAt: t.Integer({ description: "epoch ms of the login" }),
  lastSeenAt: t.Integer({ description: "epoch ms, updated at most every 15 s" }),
  expiresAt: t.Integer({ description: "epoch ms; the idle timeout may end it sooner" }),
  clientIp: t.Union([t.String(), t.Null()]),
  current: t.Boolean({ description: "This request's own session" }),
});

export function adminSessionRoutes(deps: AppDeps) {
  const db = deps.store.db;
  const tags = ["auth"];
  return new Elysia({ name: "routes:admin-sessions" })
    .use(requestInfo)
    .get(
      "/api/auth/sessions",
      async ({ request }) => {
        const token = readCookie(request.headers, SESSION_COOKIE);
        const own = token ? await sha256Hex(token) : null;
        const now = deps.clock();
        const idleMs = deps.settings.adminSessionIdleSeconds * 1000;
        const rows = await db
          .selectFrom("admin_sessions")
          .selectAll()
          .where("expires_at", ">", now)
          .where("last_seen_at", ">", now - idleMs)
          .orderBy("created_at", "desc")
          .execute();
        return {
          sessions: rows.map((r) => ({
            createdAt: Number(r.created_at),
            lastSeenAt: Number(r.last_seen_at),
            expiresAt: Number(r.expires_at),
            clientIp: r.client_ip,
            current: r.id_hash === own,
          })),
        };
      },
      {
        detail: { tags, summary: "Open admin sessions, newest first" },
        response: { 200: t.Object({ sessions: t.Array(SessionView) }) },
      },
    )
    .post(
      "/api/auth/sessions/revoke-all",
      async ({ request, set, info }) => {
        // The audit row is written in the same transaction as the change.
        await deps.access.admin.sessions.revokeAll({
          action: "admin.sessions_revoked",
          ...auditContext(info),
          details: null,
        });
        set.headers["set-cookie"] = clearedSessionCookie(deps.access.isHttps(request, info.peerIp));
        return { status: "logged_out_everywhere" };
      },
      {
        detail: { tags, summary: "Log out everywhere: ends every admin session, this one included" },
        response: { 200: t.Object({ status: t.String() }) },
      },
    );
}
