/**
 * The admin guard, the one place that decides who may use `/api/*` and `/docs` (the dashboard's page
 * is public; its data comes from `/api/*`):
 * - no password yet: clients on this machine only (remote ones must bootstrap a password);
 * - a password is set: a live session cookie, from anywhere (loopback included).
 * The routes that let you get a session are public (see {@link publicAdminPaths}).
 *
 * @module
 */
import { GatewayError } from "../../core/errors.ts";
import { withoutTrailingSlashes } from "../../core/paths.ts";
import type { AdminAuth } from "./service.ts";
import { readCookie, SESSION_COOKIE } from "./sessions.ts";

/**
 * Admin paths open to everyone: session state, login, logout, and setting the first password
 * (that route checks locality or the bootstrap token itself, and a session for a change).
 */
export const publicAdminPaths: readonly string[] = [
  "/api/auth/session",
  "/api/auth/login",
  "/api/auth/logout",
  "/api/auth/password",
];

/** True for the admin paths anyone may call (see {@link publicAdminPaths}). */
export function isPublicAdminPath(path: string): boolean {
  return publicAdminPaths.includes(withoutTrailingSlashes(path));
}

/** True when the caller may use the admin surface now. */
export async function hasAdminAccess(
  auth: AdminAuth,
  request: Request,
  local: boolean,
  now: number,
): Promise<boolean> {
  const { passwordSet } = await auth.state();
  if (!passwordSet) return local;
  return auth.sessions.check(readCookie(request.headers, SESSION_COOKIE), now);
}

/** Null when the request may proceed, else the 401 to answer with. */
export async function adminGuard(
  auth: AdminAuth,
  request: Request,
  path: string,
  local: boolean,
  now: number,
): Promise<GatewayError | null> {
  if (isPublicAdminPath(path)) return null;
  if (await hasAdminAccess(auth, request, local, now)) return null;
  const { passwordSet } = await auth.state();
  return new GatewayError(
    "authentication_required",
    passwordSet
      ? "Log in first: POST /api/auth/login"
      : "No admin password is set yet: set one from this machine, or from here with the bootstrap token printed in the gateway's log (POST /api/auth/password)",
  );
}
