/**
 * `/api/oauth/*`: start a browser or device login, poll its status, or finish a browser login by
 * pasting the redirect URL (when the browser cannot reach the callback listener).
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { requestInfo } from "../core/request-info.ts";
import { ErrorBody } from "../core/schemas.ts";
import { audit, auditContext } from "../store/audit.ts";
import { OAuthError } from "./client.ts";

const Status = t.Object({
  status: t.Union([t.Literal("pending"), t.Literal("success"), t.Literal("error")]),
  errorMessage: t.Union([t.String(), t.Null()]),
  accountId: t.Union([t.String(), t.Null()], {
    description: "the account the login stored, once successful",
  }),
});

/** The OAuth login routes. */
export function oauthRoutes(deps: AppDeps) {
  const { oauth } = deps;
  const tags = ["oauth"];
  return new Elysia({ name: "routes:oauth" })
    .use(requestInfo)
    .post(
      "/api/oauth/start",
      async ({ body, info }) => {
        try {
          const flow = body.method === "device" ? await oauth.startDevice() : await oauth.startBrowser();
          await audit(deps.store.db, {
            action: "oauth.start",
            ...auditContext(info),
            details: { method: body.method, flowId: flow.flowId },
          });
          return flow;
        } catch (e) {
          if (e instanceof OAuthError)
            throw new GatewayError("oauth_error", e.message, { oauthCode: e.code });
          throw e;
        }
      },
      {
        body: t.Object({ method: t.Union([t.Literal("browser"), t.Literal("device")]) }),
        detail: { tags, summary: "Start a browser (PKCE) or device-code login" },
        response: {
          200: t.Object({
            flowId: t.String(),
            method: t.String(),
            authorizationUrl: t.Optional(t.String()),
            callbackUrl: t.Optional(t.String()),
            verificationUrl: t.Optional(t.String()),
            userCode: t.Optional(t.String()),
            deviceAuthId: t.Optional(t.String()),
            intervalSeconds: t.Optional(t.Number()),
            expiresInSeconds: t.Number(),
          }),
          400: ErrorBody,
          502: ErrorBody,
        },
      },
    )
    .get(
      "/api/oauth/status",
      ({ query }) => {
        const s = oauth.status(query.flowId);
        if (!s) throw new GatewayError("oauth_flow_not_found");
        return s;
      },
      {
        query: t.Object({ flowId: t.String({ minLength: 1 }) }),
        detail: { tags, summary: "The state of a login flow" },
        response: { 200: Status, 404: ErrorBody },
      },
    )
    .post(
      "/api/oauth/manual-callback",
      async ({ body }) => {
        let url: URL;
        try {
          url = new URL(body.callbackUrl.trim());
        } catch {
          throw new GatewayError(
            "validation_error",
            "callbackUrl is not a URL: paste the whole address the browser was sent to",
          );
        }
        if (body.flowId && !oauth.status(body.flowId)) throw new GatewayError("oauth_flow_not_found");
        return oauth.complete(url.searchParams, body.flowId ?? null);
      },
      {
        body: t.Object({
          callbackUrl: t.String({
            minLength: 1,
            description: "the full http://localhost:1455/auth/callback?... URL",
          }),
          flowId: t.Optional(t.String()),
        }),
        detail: { tags, summary: "Finish a browser login by pasting the redirect URL" },
        response: { 200: Status, 400: ErrorBody, 404: ErrorBody },
      },
    );
}
