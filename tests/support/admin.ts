/**
 * Admin helpers for tests: set the admin password and log in (the session cookie for later calls),
 * and send a request from another address through the in-process entry (`gateway.fetch(request,
 * peerIp)`), which is how tests play a remote client while every socket is on 127.0.0.1.
 *
 * Other areas' tests need none of this while no password is set: loopback callers may use the
 * admin API without a session until then.
 *
 * @module
 */
import type { TestGateway } from "./gateway.ts";

export const TEST_ADMIN_PASSWORD = "correct horse battery staple";

/** A documentation address (RFC 5737) used as "a remote client". */
export const REMOTE_IP = "203.0.113.7";

/** Sends a request as if from `peerIp` (default {@link REMOTE_IP}); `path` starts with `/`. */
export function remoteFetch(
  gw: TestGateway,
  path: string,
  init: RequestInit = {},
  peerIp: string = REMOTE_IP,
): Promise<Response> {
  return gw.running.gateway.fetch(new Request(`${gw.url}${path}`, init), peerIp);
}

/**
 * Sends a request from this machine when 127.0.0.1 is itself a trusted proxy (whose callers are
 * never local): in-process, with the loopback peer `::1`, which is not listed.
 */
export function localFetch(gw: TestGateway, path: string, init: RequestInit = {}): Promise<Response> {
  return remoteFetch(gw, path, init, "::1");
}

/** The `name=value` part of a Set-Cookie header, or null. */
export function cookieOf(res: Response): string | null {
  const raw = res.headers.get("set-cookie");
  return raw ? raw.split(";")[0]! : null;
}

/** Sets the password from loopback when none is set yet. */
export async function setAdminPassword(gw: TestGateway, password = TEST_ADMIN_PASSWORD): Promise<Response> {
  return fetch(`${gw.url}/api/auth/password`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ newPassword: password }),
  });
}

/** Logs in (setting the password first if needed) and returns the Cookie header value. */
export async function adminLogin(
  gw: TestGateway,
  opts: { password?: string; totpCode?: string } = {},
): Promise<string> {
  const password = opts.password ?? TEST_ADMIN_PASSWORD;
  const state = (await (await fetch(`${gw.url}/api/auth/session`)).json()) as { passwordSet: boolean };
  if (!state.passwordSet) {
    const res = await setAdminPassword(gw, password);
    if (res.status !== 200) throw new Error(`setting the admin password failed: ${res.status}`);
  }
  const res = await fetch(`${gw.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ password, ...(opts.totpCode ? { totpCode: opts.totpCode } : {}) }),
  });
  const cookie = cookieOf(res);
  if (res.status !== 200 || !cookie) throw new Error(`admin login failed: ${res.status} ${await res.text()}`);
  return cookie;
}

/** JSON request init with an optional session cookie. */
export function jsonInit(method: string, body?: unknown, cookie?: string | null): RequestInit {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (cookie) headers.cookie = cookie;
  return { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) };
}
