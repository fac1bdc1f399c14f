/**
 * A fake OpenAI auth server: `POST /oauth/token` (refresh_token grant as JSON, authorization_code
 * grant form-encoded with PKCE check) and the device-code endpoints. Refresh tokens rotate and are
 * single-use, like the real server's. Tests script failures and read what happened from `state`.
 *
 * @module
 */

import { type FakeIdentity, mintTokens } from "./jwt.ts";
import type { FakeRoutes } from "./server.ts";

/** A token set as the fake issued it. */
export interface TokenBundle {
  readonly idToken: string;
  readonly accessToken: string;
  readonly refreshToken: string;
}

/** What one device token poll answers. */
export type DeviceStep = "pending" | "slow_down" | { slowDownInterval: number } | "approve";

/** The fake auth server's scriptable state and what it saw. */
export interface FakeAuthState {
  /** Live refresh tokens and whose they are. */
  readonly refreshTokens: Map<string, FakeIdentity>;
  /** Every token value this fake ever issued (tests grep logs for them). */
  readonly issued: string[];
  /** Lifetime of access tokens issued by a refresh or code exchange. */
  accessTtlSeconds: number;
  /** Refresh calls received. */
  refreshCalls: number;
  /** Delay before answering a refresh, in ms. */
  refreshDelayMs: number;
  /**
   * Rotate, then answer late: when set, a refresh rotates the token at once (the old refresh token
   * is spent) but its answer is held until this promise settles, as an auth server that answers
   * after the gateway's refresh timeout would.
   */
  holdAnswer: Promise<unknown> | null;
  /** Scripted answer for a refresh (return undefined for the normal behaviour). */
  onRefresh: ((refreshToken: string, identity: FakeIdentity | undefined) => Response | undefined) | null;
  /** Authorization codes: code → identity and PKCE challenge. */
  readonly codes: Map<
    string,
    { identity: FakeIdentity; challenge: string | null; redirectUri: string | null }
  >;
  /** Device flow: the identity that approves, what each poll answers in turn, the interval given. */
  deviceIdentity: FakeIdentity | null;
  deviceSteps: DeviceStep[];
  deviceInterval: number | string;
  /** Times (ms) of the device token polls received. */
  readonly devicePolls: number[];
  /** The last code-exchange form received. */
  lastExchange: URLSearchParams | null;
}

const b64url = (bytes: ArrayBuffer) => Buffer.from(bytes).toString("base64url");
const random = () => Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");

/** A fake auth server: routes, state and helpers. */
export interface FakeAuth {
  readonly routes: FakeRoutes;
  readonly state: FakeAuthState;
  /** Issues a fresh token set for `identity` (as a login would); its refresh token is live. */
  issue(identity: FakeIdentity, opts?: { expiresInSeconds?: number; now?: number }): TokenBundle;
  /** What a user's browser gets after approving: an authorization code bound to the PKCE challenge. */
  authorize(identity: FakeIdentity, challenge: string | null, redirectUri?: string | null): string;
}

/** A fake auth server's routes and state; compose with `startFakeServer`. */
export function fakeAuth(opts: { now?: () => number } = {}): FakeAuth {
  /** The time device polls are recorded at (the gateway's FakeClock when the test moves one). */
  const now = opts.now ?? (() => Date.now());
  const state: FakeAuthState = {
    refreshTokens: new Map(),
    issued: [],
    accessTtlSeconds: 3600,
    refreshCalls: 0,
    refreshDelayMs: 0,
    holdAnswer: null,
    onRefresh: null,
    codes: new Map(),
    deviceIdentity: null,
    deviceSteps: [],
    deviceInterval: 0,
    devicePolls: [],
    lastExchange: null,
  };
  const issue = (
    identity: FakeIdentity,
    opts: { expiresInSeconds?: number; now?: number } = {},
  ): TokenBundle => {
    const t = mintTokens(identity, {
      expiresInSeconds: opts.expiresInSeconds ?? state.accessTtlSeconds,
      now: opts.now,
    });
    const refreshToken = `rt_${random()}`;
    state.refreshTokens.set(refreshToken, identity);
    state.issued.push(t.idToken, t.accessToken, refreshToken);
    return { ...t, refreshToken };
  };
  const tokenAnswer = (b: TokenBundle) =>
    Response.json({
      access_token: b.accessToken,
      refresh_token: b.refreshToken,
      id_token: b.idToken,
      token_type: "Bearer",
      expires_in: state.accessTtlSeconds,
    });
  const authorize = (identity: FakeIdentity, challenge: string | null, redirectUri: string | null = null) => {
    const code = `code_${random()}`;
    state.codes.set(code, { identity, challenge, redirectUri });
    return code;
  };

  const routes: FakeRoutes = {
    "POST /oauth/token": async (request) => {
      const type = request.headers.get("content-type") ?? "";
      if (type.includes("application/json")) {
        const body = (await request.json()) as Record<string, string>;
        if (body.grant_type !== "refresh_token")
          return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
        state.refreshCalls++;
        if (state.refreshDelayMs > 0) await Bun.sleep(state.refreshDelayMs);
        const rt = body.refresh_token ?? "";
        const identity = state.refreshTokens.get(rt);
        const scripted = state.onRefresh?.(rt, identity);
        if (scripted) return scripted;
        if (!identity) {
          return Response.json(
            {
              error: {
                code: "refresh_token_reused",
                message:
                  "Your refresh token has already been used to generate a new access token. Please try signing in again.",
              },
            },
            { status: 401 },
          );
        }
        state.refreshTokens.delete(rt);
        const answer = tokenAnswer(issue(identity));
        if (state.holdAnswer) await state.holdAnswer.catch(() => {});
        return answer;
      }
      const form = new URLSearchParams(await request.text());
      state.lastExchange = form;
      if (form.get("grant_type") !== "authorization_code")
        return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
      const entry = state.codes.get(form.get("code") ?? "");
      if (!entry)
        return Response.json(
          { error: "invalid_grant", error_description: "Unknown authorization code" },
          { status: 400 },
        );
      state.codes.delete(form.get("code") ?? "");
      if (entry.challenge !== null) {
        const digest = await crypto.subtle.digest(
          "SHA-256",
          new TextEncoder().encode(form.get("code_verifier") ?? ""),
        );
        if (b64url(digest) !== entry.challenge)
          return Response.json(
            { error: "invalid_grant", error_description: "PKCE verification failed" },
            { status: 400 },
          );
      }
      return tokenAnswer(issue(entry.identity));
    },
    "POST /api/accounts/deviceauth/usercode": () =>
      Response.json({
        device_auth_id: `dev_${random()}`,
        user_code: "ABCD-1234",
        interval: state.deviceInterval,
        expires_in: 600,
      }),
    "POST /api/accounts/deviceauth/token": () => {
      state.devicePolls.push(now());
      const step = state.deviceSteps.shift() ?? "pending";
      if (step === "pending")
        return Response.json(
          { error: { code: "authorization_pending", message: "pending" } },
          { status: 403 },
        );
      if (step === "slow_down") return Response.json({ error: { code: "slow_down" } }, { status: 400 });
      if (typeof step === "object")
        return Response.json(
          { error: { code: "slow_down" }, interval: step.slowDownInterval },
          { status: 400 },
        );
      if (!state.deviceIdentity) return Response.json({ error: { code: "no_identity" } }, { status: 500 });
      const verifier = random();
      return (async () => {
        const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
        const code = authorize(state.deviceIdentity!, b64url(digest));
        return Response.json({ authorization_code: code, code_verifier: verifier });
      })();
    },
  };
  return { routes, state, issue, authorize };
}
