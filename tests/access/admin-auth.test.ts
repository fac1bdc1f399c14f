import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  adminLogin,
  cookieOf,
  jsonInit,
  REMOTE_IP,
  remoteFetch,
  TEST_ADMIN_PASSWORD,
} from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}
const login = (gw: TestGateway, body: Record<string, unknown>, ip = REMOTE_IP) =>
  remoteFetch(gw, "/api/auth/login", jsonInit("POST", body), ip);

describe("before a password exists", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("loopback clients may use the admin API; remote ones get 401 and are told to bootstrap", async () => {
    expect((await fetch(`${gw.url}/api/api-keys`)).status).toBe(200);
    const res = await remoteFetch(gw, "/api/api-keys");
    expect(res.status).toBe(401);
    expect(await errorOf(res)).toMatchObject({ code: "authentication_required" });
    const state = (await (await remoteFetch(gw, "/api/auth/session")).json()) as Record<string, boolean>;
    expect(state).toMatchObject({
      authenticated: false,
      passwordSet: false,
      local: false,
      bootstrapRequired: true,
    });
  });

  test("the bootstrap token is printed once; a remote client needs it to set the first password", async () => {
    const printed = gw.logs().filter((l) => typeof l.bootstrapToken === "string");
    expect(printed.length).toBe(1);
    const token = printed[0]!.bootstrapToken as string;
    const body = { newPassword: "a remote first password" };
    const none = await remoteFetch(gw, "/api/auth/password", jsonInit("POST", body));
    expect(none.status).toBe(401);
    const wrong = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { ...body, bootstrapToken: "x" }),
    );
    expect(wrong.status).toBe(401);
    const short = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { newPassword: "short", bootstrapToken: token }),
    );
    expect(short.status).toBe(400);
    expect((await errorOf(short)).message).toContain("at least 8");
    const ok = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { ...body, bootstrapToken: token }),
    );
    expect(ok.status).toBe(200);
    const cookie = cookieOf(ok)!;
    expect((await remoteFetch(gw, "/api/api-keys", { headers: { cookie } })).status).toBe(200);
    // One-time: the token is spent, and loopback now needs a session too.
    const again = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { ...body, bootstrapToken: token }),
    );
    expect(again.status).toBe(401);
    expect((await fetch(`${gw.url}/api/api-keys`)).status).toBe(401);
    const actions = (await gw.running.store.db.selectFrom("audit_logs").select("action").execute()).map(
      (a) => a.action,
    );
    expect(actions).toContain("admin.password_set");
  });
});

describe("with a password", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
    await adminLogin(gw);
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("login sets an HttpOnly, SameSite=Strict session cookie that opens the admin API", async () => {
    const res = await login(gw, { password: TEST_ADMIN_PASSWORD });
    expect(res.status).toBe(200);
    const raw = res.headers.get("set-cookie")!;
    expect(raw).toContain("HttpOnly");
    expect(raw).toContain("SameSite=Strict");
    expect(raw).toContain("Path=/");
    const cookie = cookieOf(res)!;
    expect((await remoteFetch(gw, "/api/api-keys", { headers: { cookie } })).status).toBe(200);
    expect(
      (await remoteFetch(gw, "/api/api-keys", { headers: { cookie: "codex_lb_session=forged" } })).status,
    ).toBe(401);
    const rows = await gw.running.store.db.selectFrom("admin_sessions").select("id_hash").execute();
    expect(rows.some((r) => r.id_hash === cookie.split("=")[1])).toBe(false);
  });

  test("a wrong password → 401 invalid_credentials, audited", async () => {
    const res = await login(gw, { password: "not the password" }, "198.51.100.20");
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe("invalid_credentials");
    const rows = await gw.running.store.db
      .selectFrom("audit_logs")
      .selectAll()
      .where("action", "=", "admin.login_failed")
      .execute();
    expect(rows.some((r) => r.actor_ip === "198.51.100.20")).toBe(true);
  });

  test("logout revokes the session server-side", async () => {
    const cookie = cookieOf(await login(gw, { password: TEST_ADMIN_PASSWORD }))!;
    const out = await remoteFetch(gw, "/api/auth/logout", { method: "POST", headers: { cookie } });
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    // The old cookie value replayed after logout is dead.
    expect((await remoteFetch(gw, "/api/api-keys", { headers: { cookie } })).status).toBe(401);
  });

  test("8 failed logins per minute per address → 429 with Retry-After, even for the right password", async () => {
    const ip = "198.51.100.66";
    for (let i = 0; i < 8; i++) expect((await login(gw, { password: `wrong-${i}-xx` }, ip)).status).toBe(401);
    const blocked = await login(gw, { password: TEST_ADMIN_PASSWORD }, ip);
    expect(blocked.status).toBe(429);
    expect(await errorOf(blocked)).toMatchObject({ code: "too_many_attempts" });
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(blocked.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    // Another address is not affected.
    expect((await login(gw, { password: TEST_ADMIN_PASSWORD }, "198.51.100.67")).status).toBe(200);
  });

  test("a password change needs the current one and revokes every session", async () => {
    const a = cookieOf(await login(gw, { password: TEST_ADMIN_PASSWORD }))!;
    const b = cookieOf(await login(gw, { password: TEST_ADMIN_PASSWORD }))!;
    const wrong = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { currentPassword: "nope nope", newPassword: "x".repeat(9) }, a),
    );
    expect(wrong.status).toBe(401);
    const noSession = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { currentPassword: TEST_ADMIN_PASSWORD, newPassword: "y".repeat(9) }),
    );
    expect(noSession.status).toBe(401);
    const longPassword = `${"ü".repeat(60)} longer than bcrypt's 72 bytes`;
    const ok = await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { currentPassword: TEST_ADMIN_PASSWORD, newPassword: longPassword }, a),
    );
    expect(ok.status).toBe(200);
    const fresh = cookieOf(ok)!;
    expect((await remoteFetch(gw, "/api/api-keys", { headers: { cookie: a } })).status).toBe(401);
    expect((await remoteFetch(gw, "/api/api-keys", { headers: { cookie: b } })).status).toBe(401);
    expect((await remoteFetch(gw, "/api/api-keys", { headers: { cookie: fresh } })).status).toBe(200);
    // bcrypt would accept any suffix after 72 bytes; argon2id does not.
    expect(
      (await login(gw, { password: `${"ü".repeat(60)} longer than bcrypt's 72 bytes!` }, "198.51.100.90"))
        .status,
    ).toBe(401);
    expect((await login(gw, { password: longPassword }, "198.51.100.90")).status).toBe(200);
    await remoteFetch(
      gw,
      "/api/auth/password",
      jsonInit("POST", { currentPassword: longPassword, newPassword: TEST_ADMIN_PASSWORD }, fresh),
    );
    const hash = await gw.running.store.db
      .selectFrom("admin_credentials")
      .select("password_hash")
      .executeTakeFirstOrThrow();
    expect(hash.password_hash).toStartWith("$argon2id$");
    const actions = (await gw.running.store.db.selectFrom("audit_logs").select("action").execute()).map(
      (r) => r.action,
    );
    expect(actions).toContain("admin.password_changed");
  });
});
