/**
 * `/api/accounts*`: list, show, import, export, pause, reactivate, delete and the event history.
 * Status changes go through the action applier (`services.apply`, source `admin`).
 *
 * @module
 */
import { Elysia, t } from "elysia";
import { guardErrorOf } from "../core/body-guard.ts";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { Page, pageQuery } from "../core/paging.ts";
import { type RequestInfo, requestInfo } from "../core/request-info.ts";
import { ErrorBody } from "../core/schemas.ts";
import type { Action } from "../plugin-host/actions.ts";
import { audit, auditContext } from "../store/audit.ts";
import { exportForms, parseAuthJsonText } from "./auth-json.ts";
import {
  AccountEventView,
  type AccountLoad,
  AccountView,
  accountEvents,
  accountViews,
  countAccountEvents,
} from "./views.ts";

const Id = t.Object({ id: t.String({ minLength: 1, maxLength: 200 }) });
const ImportResult = t.Object({
  accountId: t.String(),
  email: t.Union([t.String(), t.Null()]),
  planType: t.Union([t.String(), t.Null()]),
  status: t.String(),
  created: t.Boolean({ description: "false when the same identity existed and was updated in place" }),
});

const Str = t.String();
const NullStr = t.Union([t.String(), t.Null()]);
const ExportResult = t.Object({
  account: t.Object({ id: Str, chatgptAccountId: NullStr, email: NullStr }),
  tokens: t.Object({ idToken: Str, accessToken: Str, refreshToken: Str, expiresAtMs: t.Number() }),
  codexAuthJson: t.Object({
    auth_mode: t.Literal("chatgpt"),
    OPENAI_API_KEY: t.Null(),
    tokens: t.Object({ id_token: Str, access_token: Str, refresh_token: Str, account_id: NullStr }),
    last_refresh: Str,
  }),
  opencodeAuthJson: t.Object({
    openai: t.Object({
      type: t.Literal("oauth"),
      refresh: Str,
      access: Str,
      expires: t.Number(),
      accountId: NullStr,
    }),
  }),
  filename: Str,
});

/** Reads an import body: multipart field `auth_json` (file or text), or the file's JSON as the body. */
async function readImportBody(request: Request) {
  const type = request.headers.get("content-type") ?? "";
  if (type.startsWith("multipart/form-data")) {
    let form: FormData;
    try {
      form = await request.formData();
    } catch (e) {
      // Over the size limit or past the body deadline: that answer (413 / 408), not "unreadable".
      throw guardErrorOf(e) ?? new GatewayError("invalid_auth_json", "The multipart body could not be read");
    }
    const part = form.get("auth_json");
    if (part === null)
      throw new GatewayError("invalid_auth_json", "The multipart body has no `auth_json` field");
    return parseAuthJsonText(typeof part === "string" ? part : await part.text());
  }
  const text = await request.text();
  if (text.trim() === "")
    throw new GatewayError("invalid_auth_json", "The body is empty: send the auth.json");
  return parseAuthJsonText(text);
}

/** The account routes. */
export function accountRoutes(deps: AppDeps) {
  const { store, accounts, services } = deps;
  // The balancing plugin's leases give the live load; a gateway without that provider shows zero.
  const load = (): AccountLoad | undefined => {
    try {
      return services.provider("leases");
    } catch {
      return undefined;
    }
  };
  const one = async (id: string) => {
    const [view] = await accountViews(store.db, id, load(), deps.clock());
    if (!view) throw new GatewayError("account_not_found", `No account ${JSON.stringify(id)}`);
    return view;
  };
  const statusChange = async (id: string, action: Action, info: RequestInfo) => {
    await one(id);
    // The audit row is written in the same transaction as the change.
    const [result] = await services.apply([action], {
      source: "admin",
      requestId: info.requestId,
      audit: { action: action.type, ...auditContext(info), details: { accountId: id } },
    });
    if (result?.status === "missing")
      throw new GatewayError("account_not_found", `No account ${JSON.stringify(id)}`);
    if (result?.status === "not_applicable") {
      if (result.fromStatus === "reauth_required") throw new GatewayError("reauth_required");
      throw new GatewayError(
        "conflict",
        `The account is ${result.fromStatus}; ${action.type} does not apply`,
      );
    }
    if (result?.status === "stale")
      throw new GatewayError("conflict", "The account changed meanwhile; try again");
    return one(id);
  };
  const tags = ["accounts"];
  return new Elysia({ name: "routes:accounts" })
    .use(requestInfo)
    .get(
      "/api/accounts",
      async () => ({ accounts: await accountViews(store.db, undefined, load(), deps.clock()) }),
      {
        detail: { tags, summary: "Every account with its status and latest usage windows" },
        response: { 200: t.Object({ accounts: t.Array(AccountView) }) },
      },
    )
    .post(
      "/api/accounts/import",
      async ({ request, info }) => {
        const auth = await readImportBody(request);
        const r = await accounts.upsertFromTokens(auth, {
          source: "import",
          lastRefreshAt: auth.lastRefreshAt,
          requestId: info.requestId,
          // The audit row is written in the same transaction as the change.
          audit: (r) => ({
            action: "account.import",
            ...auditContext(info),
            details: { accountId: r.id, created: r.created },
          }),
        });
        deps.log.info({ accountId: r.id, created: r.created }, "account imported");
        return {
          accountId: r.id,
          email: r.email,
          planType: r.planType,
          status: r.status,
          created: r.created,
        };
      },
      {
        parse: "none",
        detail: {
          tags,
          summary: "Import a Codex CLI auth.json (multipart field `auth_json`, or the JSON as the body)",
          requestBody: {
            content: {
              "application/json": { schema: { type: "object", description: "The auth.json content" } },
              "multipart/form-data": {
                schema: {
                  type: "object",
                  properties: { auth_json: { type: "string", format: "binary" } },
                  required: ["auth_json"],
                },
              },
            },
          },
        },
        response: { 200: ImportResult, 400: ErrorBody },
      },
    )
    .get("/api/accounts/:id", ({ params }) => one(params.id), {
      params: Id,
      detail: { tags, summary: "One account" },
      response: { 200: AccountView, 404: ErrorBody },
    })
    .post(
      "/api/accounts/:id/pause",
      ({ params, info }) => statusChange(params.id, { type: "account.pause", accountId: params.id }, info),
      {
        params: Id,
        detail: { tags, summary: "Take an account out of rotation until reactivated" },
        response: { 200: AccountView, 404: ErrorBody, 409: ErrorBody },
      },
    )
    .post(
      "/api/accounts/:id/reactivate",
      ({ params, info }) =>
        statusChange(
          params.id,
          { type: "account.reactivate", accountId: params.id, reason: "Reactivated by operator" },
          info,
        ),
      {
        params: Id,
        detail: { tags, summary: "Put an account back in rotation (409 for reauth_required: log in again)" },
        response: { 200: AccountView, 404: ErrorBody, 409: ErrorBody },
      },
    )
    .delete(
      "/api/accounts/:id",
      async ({ params, info }) => {
        const deleted = await accounts.delete(params.id, {
          action: "account.delete",
          ...auditContext(info),
          details: { accountId: params.id },
        });
        if (!deleted) throw new GatewayError("account_not_found", `No account ${JSON.stringify(params.id)}`);
        deps.log.info({ accountId: params.id }, "account deleted");
        return { id: params.id, deleted: true as const };
      },
      {
        params: Id,
        detail: { tags, summary: "Delete an account with its events and usage history" },
        response: { 200: t.Object({ id: t.String(), deleted: t.Literal(true) }), 404: ErrorBody },
      },
    )
    .get(
      "/api/accounts/:id/events",
      async ({ params, query }) => {
        await one(params.id);
        const limit = query.limit ?? 200;
        const offset = query.offset ?? 0;
        const [items, total] = await Promise.all([
          accountEvents(store.db, params.id, limit, offset),
          countAccountEvents(store.db, params.id),
        ]);
        return { items, total, limit, offset };
      },
      {
        params: Id,
        query: t.Object(pageQuery(200, 1000)),
        detail: { tags, summary: "The account's status history (account_events), newest first" },
        response: { 200: Page(AccountEventView), 404: ErrorBody },
      },
    )
    .post(
      "/api/accounts/:id/export/auth",
      async ({ params, set, info }) => {
        const view = await one(params.id);
        const creds = await accounts.credentials(params.id);
        if (!creds) throw new GatewayError("account_not_found", "The account holds no tokens");
        set.headers["cache-control"] = "no-store, no-cache, must-revalidate, private";
        deps.log.info({ accountId: params.id, requestId: info.requestId }, "account tokens exported");
        await audit(store.db, {
          action: "account.export",
          ...auditContext(info),
          details: { accountId: params.id },
        });
        return exportForms({
          id: view.id,
          email: view.email,
          chatgptAccountId: creds.chatgptAccountId,
          tokens: creds,
          lastRefreshAt: creds.lastRefreshAt,
          now: deps.clock(),
        });
      },
      {
        params: Id,
        detail: {
          tags,
          summary: "Export the tokens as a Codex CLI auth.json and as an OpenCode auth entry (no-store)",
        },
        response: { 200: ExportResult, 404: ErrorBody },
      },
    );
}
