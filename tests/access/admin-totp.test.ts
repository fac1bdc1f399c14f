import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { totpAt } from "../../src/access/admin-auth/totp.ts";
import {
  adminLogin,
  cookieOf,
  jsonInit,
  localFetch,
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
    // The secret is sealed at rest with the data dir's key, never stored as it is.
    const stored = await gw.running.store.db
      .selectFrom("admin_credentials" as never)
      .selectAll()
      .execute();
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(JSON.stringify(stored)).toContain("enc:v1:");
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
    // 127.0.0.1 is the trusted proxy, so its callers are never local: the first password comes from ::1.
    expect(
      (await localFetch(gw, "/api/auth/password", jsonInit("POST", { newPassword: TEST_ADMIN_PASSWORD })))
        .status,
    ).toBe(200);
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
