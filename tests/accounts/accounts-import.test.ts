import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { type AccountsWorld, authJsonOf, identity, startAccountsWorld } from "../support/accounts.ts";

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

describe("account import", () => {
  test("JSON body: the account appears in GET /api/accounts with identity from the namespaced claims", async () => {
    const who = identity("imp");
    const bundle = w.auth.issue(who);
    const res = await post("/api/accounts/import", authJsonOf(bundle));
    expect(res.status).toBe(200);
    const r = (await res.json()) as {
      accountId: string;
      email: string;
      planType: string;
      status: string;
      created: boolean;
    };
    expect(r).toMatchObject({ email: who.email, planType: "plus", status: "active", created: true });
    expect(r.accountId).toStartWith(`${who.chatgptAccountId}_`);
    const list = (await (await fetch(`${w.gw.url}/api/accounts`)).json()) as {
      accounts: Record<string, unknown>[];
    };
    const row = list.accounts.find((a) => a.id === r.accountId)!;
    expect(row).toMatchObject({
      email: who.email,
      chatgptAccountId: who.chatgptAccountId,
      planType: "plus",
      status: "active",
      statusReason: null,
      resetAt: null,
      usage: { primary: null, secondary: null },
    });
    expect(typeof row.accessTokenExpiresAt).toBe("number");
    expect(typeof row.lastRefreshAt).toBe("number");
  });

  test("multipart field auth_json with camelCase token fields", async () => {
    const who = identity("multi");
    const b = w.auth.issue(who);
    const form = new FormData();
    const json = {
      tokens: { idToken: b.idToken, accessToken: b.accessToken, refreshToken: b.refreshToken },
      lastRefreshAt: "2026-01-01T00:00:00Z",
    };
    form.set("auth_json", new Blob([JSON.stringify(json)], { type: "application/json" }), "auth.json");
    const res = await fetch(`${w.gw.url}/api/accounts/import`, { method: "POST", body: form });
    expect(res.status).toBe(200);
    const { accountId } = (await res.json()) as { accountId: string };
    expect((await w.account(accountId)).lastRefreshAt).toBe(Date.parse("2026-01-01T00:00:00Z"));
  });

  test.each([
    ["not JSON", "{nope", "not valid JSON"],
    ["no tokens object", { OPENAI_API_KEY: "sk-x" }, "no `tokens` object"],
    ["missing refresh token", { tokens: { id_token: "a.b.c", access_token: "x" } }, "tokens.refresh_token"],
    [
      "bad last_refresh",
      { tokens: { id_token: "a.b.c", access_token: "x", refresh_token: "y" }, last_refresh: "yesterday" },
      "last_refresh",
    ],
  ])("invalid input (%s) is 400 invalid_auth_json saying what is wrong", async (_name, body, says) => {
    const res = await post("/api/accounts/import", body);
    expect(res.status).toBe(400);
    const e = (await res.json()) as { error: { code: string; message: string } };
    expect(e.error.code).toBe("invalid_auth_json");
    expect(e.error.message).toContain(says);
  });

  test("multipart without auth_json is 400 invalid_auth_json", async () => {
    const form = new FormData();
    form.set("other", "x");
    const res = await fetch(`${w.gw.url}/api/accounts/import`, { method: "POST", body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("auth_json");
  });

  test("re-import of the same identity updates the row in place and makes it active", async () => {
    const who = identity("dup");
    const first = await w.importTokens(w.auth.issue(who));
    const paused = await post(`/api/accounts/${first}/pause`);
    expect(((await paused.json()) as { status: string }).status).toBe("paused");
    const res = await post("/api/accounts/import", authJsonOf(w.auth.issue(who)));
    const r = (await res.json()) as { accountId: string; created: boolean };
    expect(r).toMatchObject({ accountId: first, created: false });
    expect((await w.account(first)).status).toBe("active");
    const list = (await (await fetch(`${w.gw.url}/api/accounts`)).json()) as {
      accounts: { email: string }[];
    };
    expect(list.accounts.filter((a) => a.email === who.email)).toHaveLength(1);
  });
});

describe("tokens at rest", () => {
  test("encryption.key is created with mode 0600 and tokens are stored encrypted", async () => {
    const st = statSync(join(w.gw.dataDir, "encryption.key"));
    expect(st.mode & 0o777).toBe(0o600);
    const b = w.auth.issue(identity("rest"));
    const id = await w.importTokens(b);
    const rows = await sql<{
      a: Uint8Array;
      r: Uint8Array;
    }>`select access_token_enc as a, refresh_token_enc as r from accounts where id = ${id}`.execute(
      w.gw.running.store.db,
    );
    const raw = Buffer.concat([Buffer.from(rows.rows[0]!.a), Buffer.from(rows.rows[0]!.r)]).toString(
      "latin1",
    );
    expect(raw).not.toContain(b.refreshToken);
    expect(raw).not.toContain(b.accessToken.slice(0, 40));
    const key = readFileSync(join(w.gw.dataDir, "encryption.key"), "utf8").trim();
    expect(Buffer.from(key, "base64")).toHaveLength(32);
    // The database file itself holds no token either.
    const file = readFileSync(join(w.gw.dataDir, "store.db")).toString("latin1");
    expect(file).not.toContain(b.refreshToken);
  });

  test("no token or key appears in any API answer but the export, nor in the log", async () => {
    const list = await (await fetch(`${w.gw.url}/api/accounts`)).text();
    const key = readFileSync(join(w.gw.dataDir, "encryption.key"), "utf8").trim();
    const log = w.gw.logText();
    for (const t of w.auth.state.issued) {
      expect(list).not.toContain(t);
      expect(log).not.toContain(t);
    }
    expect(log).not.toContain(key);
  });
});
