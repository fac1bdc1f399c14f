import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type AccountsWorld, identity, startAccountsWorld } from "../support/accounts.ts";

let w: AccountsWorld;
beforeAll(async () => {
  w = await startAccountsWorld();
});
afterAll(async () => {
  await w.stop();
});

const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${w.gw.url}${path}`, {
    method: "POST",
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });

describe("account admin", () => {
  test("pause, reactivate, events, delete", async () => {
    const id = await w.importTokens(w.auth.issue(identity("adm")));
    expect((await (await post(`/api/accounts/${id}/pause`)).json()) as object).toMatchObject({
      status: "paused",
      statusReason: "Paused by operator",
    });
    expect((await (await post(`/api/accounts/${id}/reactivate`)).json()) as object).toMatchObject({
      status: "active",
    });
    const ev = (await (await fetch(`${w.gw.url}/api/accounts/${id}/events`)).json()) as {
      items: { action: string; source: string; toStatus: string }[];
    };
    expect(ev.items.map((e) => [e.action, e.source, e.toStatus])).toEqual([
      ["account.reactivate", "admin", "active"],
      ["account.pause", "admin", "paused"],
      ["account.import", "import", "active"],
    ]);
    const del = await fetch(`${w.gw.url}/api/accounts/${id}`, { method: "DELETE" });
    expect(await del.json()).toEqual({ id, deleted: true });
    expect((await fetch(`${w.gw.url}/api/accounts/${id}`)).status).toBe(404);
    const again = await fetch(`${w.gw.url}/api/accounts/${id}`, { method: "DELETE" });
    expect(again.status).toBe(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("account_not_found");
  });

  test("reactivate of a reauth_required account is refused with 409", async () => {
    const id = await w.importTokens(w.auth.issue(identity("reauth")));
    await w.gw.running.gateway.services.apply(
      [{ type: "account.deactivate", accountId: id, status: "reauth_required", reason: "test" }],
      { source: "test" },
    );
    const res = await post(`/api/accounts/${id}/reactivate`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("reauth_required");
    expect((await w.account(id)).status).toBe("reauth_required");
  });

  test("a deactivated account can be reactivated by the operator", async () => {
    const id = await w.importTokens(w.auth.issue(identity("restored")));
    await w.gw.running.gateway.services.apply(
      [
        {
          type: "account.deactivate",
          accountId: id,
          status: "deactivated",
          reason: "Account has been suspended",
        },
      ],
      { source: "test" },
    );
    const res = await post(`/api/accounts/${id}/reactivate`);
    expect(res.status).toBe(200);
    expect(await w.account(id)).toMatchObject({ status: "active", statusReason: null });
  });

  test("unknown account ids are 404 account_not_found", async () => {
    for (const [method, path] of [
      ["GET", "/api/accounts/nope"],
      ["POST", "/api/accounts/nope/pause"],
      ["GET", "/api/accounts/nope/events"],
      ["POST", "/api/accounts/nope/export/auth"],
    ] as const) {
      const res = await fetch(`${w.gw.url}${path}`, { method });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("account_not_found");
    }
  });

  test("export returns the Codex and OpenCode forms with Cache-Control no-store", async () => {
    const who = identity("exp");
    const b = w.auth.issue(who);
    const id = await w.importTokens(b, "2026-02-03T04:05:06.789Z");
    const res = await post(`/api/accounts/${id}/export/auth`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toContain("no-store");
    const e = (await res.json()) as Record<string, Record<string, unknown>>;
    expect(e.codexAuthJson).toEqual({
      auth_mode: "chatgpt",
      OPENAI_API_KEY: null,
      tokens: {
        id_token: b.idToken,
        access_token: b.accessToken,
        refresh_token: b.refreshToken,
        account_id: who.chatgptAccountId,
      },
      last_refresh: "2026-02-03T04:05:06.789000Z",
    });
    expect(e.opencodeAuthJson).toMatchObject({
      openai: {
        type: "oauth",
        refresh: b.refreshToken,
        access: b.accessToken,
        accountId: who.chatgptAccountId,
      },
    });
    expect((e.opencodeAuthJson!.openai as { expires: number }).expires).toBeGreaterThan(Date.now());
  });

  test("the OpenAPI document lists the account and oauth routes", async () => {
    const doc = (await (await fetch(`${w.gw.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    for (const p of [
      "/api/accounts",
      "/api/accounts/{id}",
      "/api/accounts/import",
      "/api/accounts/{id}/pause",
      "/api/accounts/{id}/reactivate",
      "/api/accounts/{id}/events",
      "/api/accounts/{id}/export/auth",
      "/api/oauth/start",
      "/api/oauth/status",
      "/api/oauth/manual-callback",
    ]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
  });
});

describe("deleting an unknown account", () => {
  test("changes nothing: cached sticky bindings stay (only an account's deletion drops them)", async () => {
    const id = await w.importTokens(w.auth.issue(identity("sticky-kept")));
    const sticky = w.gw.running.gateway.services.sticky;
    const results = await w.gw.running.gateway.services.apply(
      [{ type: "sticky.bind", key: "kept-key", kind: "session", accountId: id }],
      { source: "test" },
    );
    expect(results.map((r) => r.status)).toEqual(["applied"]);
    expect((await sticky.lookup("kept-key"))?.accountId).toBe(id);
    expect(sticky.cached?.("kept-key")?.accountId).toBe(id);
    const del = await fetch(`${w.gw.url}/api/accounts/no-such-account`, { method: "DELETE" });
    expect(del.status).toBe(404);
    expect(sticky.cached?.("kept-key")?.accountId).toBe(id);
    // The account's own deletion takes its bindings, cached ones included.
    expect((await fetch(`${w.gw.url}/api/accounts/${id}`, { method: "DELETE" })).status).toBe(200);
    expect(sticky.cached?.("kept-key") ?? null).toBeNull();
    expect(await sticky.lookup("kept-key")).toBeNull();
  });
});
