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
import { infoOf } from "../../core/request-info.ts";
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
  const actorOf = (request: Request): Actor => ({
    clientIp: infoOf(request).clientIp,
    local: deps.access.isLocal(request),
  });
  const secure = (request: Request) => deps.access.isHttps(request);
  const maxAge = deps.settings.adminSessionMaxSeconds;
  const record = (request: Request, action: string, details?: Record<string, unknown>) =>
    audit(db, entry(request, action, details));
  /** The audit row of a change, handed to the service to write in the change's own transaction. */
  const entry = (request: Request, action: string, details?: Record<string, unknown>) => ({
    action,
    ...auditContext(infoOf(request)),
    details: details ?? null,
  });

  return new Elysia({ name: "routes:admin-auth" })
    .get(
      "/api/auth/session",
      async ({ request }) => {
        const state = await admin.state();
        const local = deps.access.isLocal(request);
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
      async ({ body, request, set }) => {
        try {
          const token = await admin.login(actorOf(request), body);
          set.headers["set-cookie"] = sessionCookie(token, maxAge, secure(request));
        } catch (e) {
          if (e instanceof GatewayError && e.code === "invalid_credentials")
            await record(request, "admin.login_failed", { reason: e.message });
          throw e;
        }
        await record(request, "admin.login");
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
      async ({ request, set }) => {
        await admin.sessions.revoke(readCookie(request.headers, SESSION_COOKIE));
        set.headers["set-cookie"] = clearedSessionCookie(secure(request));
        return { status: "logged_out" };
      },
      { detail: { tags, summary: "End this session" }, response: { 200: Ok } },
    )
    .post(
      "/api/auth/password",
      async ({ body, request, set }) => {
        const actor = actorOf(request);
        const { passwordSet } = await admin.state();
        if (!passwordSet) {
          await admin.setInitialPassword(
            actor,
            body.newPassword,
            body.bootstrapToken,
            entry(request, "admin.password_set", { bootstrap: !actor.local }),
          );
        } else {
          if (!(await hasAdminAccess(admin, request, actor.local, deps.clock())))
            throw new GatewayError("authentication_required", "Log in first: POST /api/auth/login");
          await admin.changePassword(
            actor,
            body.currentPassword,
            body.newPassword,
            entry(request, "admin.password_changed"),
          );
        }
        // Every older session is gone; the caller continues with a fresh one.
        const token = await admin.sessions.create(actor.clientIp, deps.clock());
        set.headers["set-cookie"] = sessionCookie(token, maxAge, secure(request));
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
      async ({ request }) => {
        const out = await admin.totpSetup(entry(request, "admin.totp_setup_started"));
        return out;
      },
      {
        detail: { tags, summary: "Start TOTP enrolment: a secret for the authenticator app" },
        response: { 200: t.Object({ secret: t.String(), otpauthUri: t.String() }), 409: ErrorBody },
      },
    )
    .post(
      "/api/auth/totp/confirm",
      async ({ body, request }) => {
        const recoveryCodes = await admin.totpConfirm(
          actorOf(request),
          body.code,
          entry(request, "admin.totp_enabled"),
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
      async ({ body, request }) => {
        await admin.totpDisable(actorOf(request), body, entry(request, "admin.totp_disabled"));
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
