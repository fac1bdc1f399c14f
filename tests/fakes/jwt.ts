/**
 * Mints fake JWTs (unsigned: the gateway only decodes them) shaped like the OpenAI auth server's:
 * id_token with email and the namespaced `https://api.openai.com/auth` claims, access_token with `exp`.
 *
 * @module
 */

/** Who a fake token belongs to. */
export interface FakeIdentity {
  readonly email: string;
  readonly chatgptAccountId: string;
  readonly chatgptUserId: string;
  readonly planType?: string;
}

const b64url = (s: string) => Buffer.from(s).toString("base64url");

let serial = 0;

/** A JWT with the given payload and a random signature part (so every token is unique). */
export function mintJwt(payload: Record<string, unknown>): string {
  const sig = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
  return `${b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }))}.${b64url(JSON.stringify({ ...payload, jti: `t${++serial}` }))}.${sig}`;
}

/** An id_token and an access token for `identity`, the access token expiring in `expiresInSeconds`. */
export function mintTokens(
  identity: FakeIdentity,
  opts: { expiresInSeconds?: number; now?: number } = {},
): { idToken: string; accessToken: string } {
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const exp = now + (opts.expiresInSeconds ?? 3600);
  const auth = {
    chatgpt_account_id: identity.chatgptAccountId,
    chatgpt_user_id: identity.chatgptUserId,
    chatgpt_plan_type: identity.planType ?? "plus",
  };
  return {
    idToken: mintJwt({
      iss: "https://auth.openai.com",
      aud: ["app_EMoamEEZ73f0CkXaXp7hrann"],
      sub: `auth0|${identity.chatgptUserId}`,
      email: identity.email,
      iat: now,
      exp,
      "https://api.openai.com/auth": auth,
    }),
    accessToken: mintJwt({
      iss: "https://auth.openai.com",
      sub: `auth0|${identity.chatgptUserId}`,
      iat: now,
      exp,
      "https://api.openai.com/auth": auth,
      "https://api.openai.com/profile": { email: identity.email },
    }),
  };
}
