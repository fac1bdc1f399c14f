import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { totpAt } from "../../src/access/admin-auth/totp.ts";
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

describe("TOTP", () => {
  let gw: TestGateway;
  let cookie: string;
  beforeAll(async () => {
    gw = await startGateway();
    cookie = await adminLogin(gw);
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("enrol, log in with a code once (replay refused), recovery code once, disable", async () => {
    const setup = await remoteFetch(gw, "/api/auth/totp/setup", jsonInit("POST", undefined, cookie));
    expect(setup.status).toBe(200);
    const { secret, otpauthUri } = (await setup.json()) as { secret: string; otpauthUri: string };
    expect(otpauthUri).toContain(`secret=${secret}`);
    const bad = await remoteFetch(gw, "/api/auth/totp/confirm", jsonInit("POST", { code: "000000" }, cookie));
    expect(bad.status).toBe(400);
    const now = Date.now();
    const confirmCode = await totpAt(secret, now);
    const confirm = await remoteFetch(
      gw,
      "/api/auth/totp/confirm",
      jsonInit("POST", { code: confirmCode }, cookie),
    );
    expect(confirm.status).toBe(200);
    const { recoveryCodes } = (await confirm.json()) as { recoveryCodes: string[] };
    expect(recoveryCodes.length).toBe(10);
    expect(new Set(recoveryCodes).size).toBe(10);

    const ip = "198.51.100.30";
    const noCode = await login(gw, { password: TEST_ADMIN_PASSWORD }, ip);
    expect(noCode.status).toBe(401);
    expect((await errorOf(noCode)).code).toBe("totp_required");
    // The code used to confirm is spent: replaying it is refused.
    const replayConfirm = await login(gw, { password: TEST_ADMIN_PASSWORD, totpCode: confirmCode }, ip);
    expect(replayConfirm.status).toBe(401);
    // The next step's code (within the ±1 window) works once.
    const next = await totpAt(secret, now + 30_000);
    const ok = await login(gw, { password: TEST_ADMIN_PASSWORD, totpCode: next }, ip);
    expect(ok.status).toBe(200);
    const replay = await login(gw, { password: TEST_ADMIN_PASSWORD, totpCode: next }, ip);
    expect(replay.status).toBe(401);
    expect((await errorOf(replay)).message).toContain("already used");

    const recovery = recoveryCodes[0]!;
    expect(
      (await login(gw, { password: TEST_ADMIN_PASSWORD, recoveryCode: recovery.toUpperCase() }, ip)).status,
    ).toBe(200);
    expect((await login(gw, { password: TEST_ADMIN_PASSWORD, recoveryCode: recovery }, ip)).status).toBe(401);

    const session = cookieOf(ok)!;
    const disable = await remoteFetch(
      gw,
      "/api/auth/totp/disable",
      jsonInit("POST", { recoveryCode: recoveryCodes[1] }, session),
    );
    expect(disable.status).toBe(200);
    expect((await login(gw, { password: TEST_ADMIN_PASSWORD }, "198.51.100.31")).status).toBe(200);
    const actions = (await gw.running.store.db.selectFrom("audit_logs").select("action").execute()).map(
      (r) => r.action,
    );
    expect(actions).toEqual(
      expect.arrayContaining(["admin.totp_enabled", "admin.totp_disabled", "admin.login"]),
    );
    const creds = await gw.running.store.db
      .selectFrom("admin_credentials")
      .selectAll()
      .executeTakeFirstOrThrow();
    expect(creds.totp_secret).toBeNull();
  });
});

test("behind a trusted TLS proxy the session cookie is Secure", async () => {
  const gw = await startGateway({ env: { CODEX_LB_TRUSTED_PROXIES: "127.0.0.1" } });
  try {
    await adminLogin(gw);
    const headers = { "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.50" };
    const res = await fetch(`${gw.url}/api/auth/login`, {
      ...jsonInit("POST", { password: TEST_ADMIN_PASSWORD }),
      headers: { "content-type": "application/json", ...headers },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toContain("; Secure");
    const rows = await gw.running.store.db
      .selectFrom("audit_logs")
      .selectAll()
      .where("action", "=", "admin.login")
      .execute();
    expect(rows.map((r) => r.actor_ip)).toContain("203.0.113.50");
    // An untrusted peer's claim of https is not believed.
    const plain = await remoteFetch(
      gw,
      "/api/auth/login",
      {
        ...jsonInit("POST", { password: TEST_ADMIN_PASSWORD }),
        headers: { "content-type": "application/json", ...headers },
      },
      "192.0.2.9",
    );
    expect(plain.headers.get("set-cookie")).not.toContain("Secure");
  } finally {
    await gw.stop();
  }
});

test("two concurrent first-password requests: exactly one wins, the other gets 409", async () => {
  const gw = await startGateway();
  try {
    const set = (p: string) => fetch(`${gw.url}/api/auth/password`, jsonInit("POST", { newPassword: p }));
    const [a, b] = await Promise.all([set("first password A"), set("first password B")]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
  } finally {
    await gw.stop();
  }
});
