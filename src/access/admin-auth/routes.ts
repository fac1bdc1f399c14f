/**
 * `/api/auth/*`: session state, login, logout, password (first one and changes), TOTP enrolment.
 * Login, logout, session and password are public (the guard lets them through); the password route
 * checks locality / bootstrap token / session itself. Every change and every login is audited.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../../core/deps.ts";
import { GatewayError } from "../../core/errors.ts";
import { type RequestInfo, requestInfo } from "../../core/request-info.ts";
import { ErrorBody } from "../../core/schemas.ts";
import { audit, auditContext } from "../../store/audit.ts";
import { hasAdminAccess } from "./guard.ts";
import type { Actor } from "./service.ts";
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sessionCookie } from "./sessions.ts";

const Session = t.Object({
  authenticated: t.Boolean({ description: "The caller may use the admin API now" }),
  passwordSet: t.Boolean(),
  totpEnabled: t.Boolean(),
  local: t.Boolean({ description: "The request comes from this machine" }),
  bootstrapRequired: t.Boolean({ description: "No password yet and the caller is remote" }),
});
const Ok = t.Object({ status: t.String() });

export function adminAuthRoutes(deps: AppDeps) {
  const { admin } = deps.access;
  const db = deps.store.db;
  const tags = ["auth"];
  const actorOf = (request: Request, info: RequestInfo): Actor => ({
    clientIp: info.clientIp,
    local: deps.access.isLocal(request, info.peerIp),
  });
  const secure = (request: Request, info: RequestInfo) => deps.access.isHttps(request, info.peerIp);
  const maxAge = deps.settings.adminSessionMaxSeconds;
  const record = (info: RequestInfo, action: string, details?: Record<string, unknown>) =>
    audit(db, entry(info, action, details));
  /** The audit row of a change, handed to the service to write in the change's own transaction. */
  const entry = (info: RequestInfo, action: string, details?: Record<string, unknown>) => ({
    action,
    ...auditContext(info),
    details: details ?? null,
  });

  return new Elysia({ name: "routes:admin-auth" })
    .use(requestInfo)
    .get(
      "/api/auth/session",
      async ({ request, info }) => {
        const state = await admin.state();
        const local = deps.access.isLocal(request, info.peerIp);
        return {
          authenticated: await hasAdminAccess(admin, request, local, deps.clock()),
          ...state,
          local,
          bootstrapRequired: !state.passwordSet && !local,
        };
      },
      { detail: { tags, summary: "Who am I: session and password state" }, response: { 200: Session } },
    )
    .post(
      "/api/auth/login",
      async ({ body, request, set, info }) => {
        try {
          const token = await admin.login(actorOf(request, info), body);
          set.headers["set-cookie"] = sessionCookie(token, maxAge, secure(request, info));
        } catch (e) {
          if (e instanceof GatewayError && e.code === "invalid_credentials")
            await record(info, "admin.login_failed", { reason: e.message });
          throw e;
        }
        await record(info, "admin.login");
        return { status: "logged_in" };
      },
      {
        body: t.Object({
          password: t.String({ maxLength: 4096 }),
          totpCode: t.Optional(t.String({ maxLength: 16 })),
          recoveryCode: t.Optional(t.String({ maxLength: 64 })),
        }),
        detail: {
          tags,
          summary:
            "Log in (password, plus totpCode or recoveryCode when TOTP is on); sets the session cookie",
        },
        response: { 200: Ok, 401: ErrorBody, 409: ErrorBody, 429: ErrorBody },
      },
    )
    .post(
      "/api/auth/logout",
      async ({ request, set, info }) => {
        await admin.sessions.revoke(readCookie(request.headers, SESSION_COOKIE));
        set.headers["set-cookie"] = clearedSessionCookie(secure(request, info));
        return { status: "logged_out" };
      },
      { detail: { tags, summary: "End this session" }, response: { 200: Ok } },
    )
    .post(
      "/api/auth/password",
      async ({ body, request, set, info }) => {
        const actor = actorOf(request, info);
        const { passwordSet } = await admin.state();
        if (!passwordSet) {
          await admin.setInitialPassword(
            actor,
            body.newPassword,
            body.bootstrapToken,
            entry(info, "admin.password_set", { bootstrap: !actor.local }),
          );
        } else {
          if (!(await hasAdminAccess(admin, request, actor.local, deps.clock())))
            throw new GatewayError("authentication_required", "Log in first: POST /api/auth/login");
          await admin.changePassword(
            actor,
            body.currentPassword,
            body.newPassword,
            entry(info, "admin.password_changed"),
          );
        }
        // Every older session is gone; the caller continues with a fresh one.
        const token = await admin.sessions.create(actor.clientIp, deps.clock());
        set.headers["set-cookie"] = sessionCookie(token, maxAge, secure(request, info));
        return { status: "password_set" };
      },
      {
        body: t.Object({
          newPassword: t.String({ maxLength: 4096, description: "At least 8 characters" }),
          currentPassword: t.Optional(t.String({ maxLength: 4096 })),
          bootstrapToken: t.Optional(t.String({ maxLength: 200 })),
        }),
        detail: {
          tags,
          summary:
            "Set the first password (from this machine, or with the bootstrap token) or change it (session + currentPassword; ends every session)",
        },
        response: { 200: Ok, 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 429: ErrorBody },
      },
    )
    .post(
      "/api/auth/totp/setup",
      async ({ info }) => {
        const out = await admin.totpSetup(entry(info, "admin.totp_setup_started"));
        return out;
      },
      {
        detail: { tags, summary: "Start TOTP enrolment: a secret for the authenticator app" },
        response: { 200: t.Object({ secret: t.String(), otpauthUri: t.String() }), 409: ErrorBody },
      },
    )
    .post(
      "/api/auth/totp/confirm",
      async ({ body, request, info }) => {
        const recoveryCodes = await admin.totpConfirm(
          actorOf(request, info),
          body.code,
          entry(info, "admin.totp_enabled"),
        );
        return { recoveryCodes };
      },
      {
        body: t.Object({ code: t.String({ maxLength: 16 }) }),
        detail: { tags, summary: "Enable TOTP with a current code; answers the recovery codes (shown once)" },
        response: { 200: t.Object({ recoveryCodes: t.Array(t.String()) }), 400: ErrorBody, 409: ErrorBody },
      },
    )
    .post(
      "/api/auth/totp/disable",
      async ({ body, request, info }) => {
        await admin.totpDisable(actorOf(request, info), body, entry(info, "admin.totp_disabled"));
        return { status: "totp_disabled" };
      },
      {
        body: t.Object({
          code: t.Optional(t.String({ maxLength: 16 })),
          recoveryCode: t.Optional(t.String({ maxLength: 64 })),
        }),
        detail: { tags, summary: "Disable TOTP (needs a current code or a recovery code)" },
        response: { 200: Ok, 400: ErrorBody, 409: ErrorBody, 429: ErrorBody },
      },
    );
}
