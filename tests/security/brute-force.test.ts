/**
 * The credential limiter counts an attempt before verifying it: however many guesses race in
 * parallel from one address, at most 8 are verified per minute (on the old main all 400 were).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AttemptLimiter } from "../../src/access/admin-auth/attempts.ts";
import { totpAt } from "../../src/access/admin-auth/totp.ts";
import { adminLogin, jsonInit, remoteFetch, TEST_ADMIN_PASSWORD } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const PARALLEL = 400;

async function burst(
  gw: TestGateway,
  path: string,
  body: (i: number) => unknown,
  ip: string,
  cookie?: string,
) {
  const answers = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) => remoteFetch(gw, path, jsonInit("POST", body(i), cookie), ip)),
  );
  const counts = new Map<number, number>();
  for (const r of answers) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  for (const r of answers)
    if (r.status === 429) expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
  return counts;
}

async function failedLogins(gw: TestGateway, ip: string): Promise<number> {
  const rows = await gw.running.store.db
    .selectFrom("audit_logs")
    .select("id")
    .where("action", "=", "admin.login_failed")
    .where("actor_ip", "=", ip)
    .execute();
  return rows.length;
}

describe("400 parallel guesses from one address", () => {
  let gw: TestGateway;
  let cookie: string;
  beforeAll(async () => {
    gw = await startGateway();
    cookie = await adminLogin(gw);
  });
  // Closing after 400 parallel connections can take longer than the default 5 s hook timeout
  // when the whole suite runs on a busy machine.
  afterAll(async () => {
    await gw.stop();
  }, 30_000);

  test("wrong passwords: 8 verified (401), the rest 429 without a check", async () => {
    const ip = "203.0.113.101";
    const counts = await burst(gw, "/api/auth/login", (i) => ({ password: `guess-${i}` }), ip);
    expect(counts.get(401)).toBe(8);
    expect(counts.get(429)).toBe(PARALLEL - 8);
    expect(await failedLogins(gw, ip)).toBe(8);
    // The right password from that address is refused too until the window ends.
    const right = await remoteFetch(
      gw,
      "/api/auth/login",
      jsonInit("POST", { password: TEST_ADMIN_PASSWORD }),
      ip,
    );
    expect(right.status).toBe(429);
    // Another address is not affected.
    const other = await remoteFetch(
      gw,
      "/api/auth/login",
      jsonInit("POST", { password: TEST_ADMIN_PASSWORD }),
      "203.0.113.102",
    );
    expect(other.status).toBe(200);
  });

  test("password changes (currentPassword guesses) are limited the same way", async () => {
    const ip = "203.0.113.103";
    const session = await remoteFetch(
      gw,
      "/api/auth/login",
      jsonInit("POST", { password: TEST_ADMIN_PASSWORD }),
      ip,
    );
    const c = session.headers.get("set-cookie")!.split(";")[0]!;
    const counts = await burst(
      gw,
      "/api/auth/password",
      (i) => ({ currentPassword: `guess-${i}`, newPassword: "another long password" }),
      ip,
      c,
    );
    expect(counts.get(401)).toBe(8);
    expect(counts.get(429)).toBe(PARALLEL - 8);
  });

  describe("with TOTP on", () => {
    let recovery: string[];
    beforeAll(async () => {
      const setup = await remoteFetch(
        gw,
        "/api/auth/totp/setup",
        jsonInit("POST", undefined, cookie),
        "198.51.100.1",
      );
      const { secret } = (await setup.json()) as { secret: string };
      const confirm = await remoteFetch(
        gw,
        "/api/auth/totp/confirm",
        jsonInit("POST", { code: await totpAt(secret, Date.now()) }, cookie),
        "198.51.100.1",
      );
      expect(confirm.status).toBe(200);
      recovery = ((await confirm.json()) as { recoveryCodes: string[] }).recoveryCodes;
      expect(recovery.length).toBe(10);
    });

    test("right password, wrong TOTP codes: 8 checked", async () => {
      const ip = "203.0.113.104";
      const counts = await burst(
        gw,
        "/api/auth/login",
        (i) => ({ password: TEST_ADMIN_PASSWORD, totpCode: String(100000 + i).padStart(6, "0") }),
        ip,
      );
      // A guessed code may even be right once in a million; the count of checks is what matters.
      expect((counts.get(401) ?? 0) + (counts.get(200) ?? 0)).toBe(8);
      expect(counts.get(429)).toBe(PARALLEL - 8);
    });

    test("right password, wrong recovery codes: 8 checked", async () => {
      const ip = "203.0.113.105";
      const counts = await burst(
        gw,
        "/api/auth/login",
        (i) => ({ password: TEST_ADMIN_PASSWORD, recoveryCode: `wrong-code-${i}` }),
        ip,
      );
      expect(counts.get(401)).toBe(8);
      expect(counts.get(429)).toBe(PARALLEL - 8);
    });
  });
});

test("the bootstrap token: 400 parallel wrong tokens, 8 checked", async () => {
  const gw = await startGateway();
  try {
    const ip = "203.0.113.106";
    const counts = await burst(
      gw,
      "/api/auth/password",
      (i) => ({ newPassword: "attacker password", bootstrapToken: `token-${i}` }),
      ip,
    );
    expect(counts.get(401)).toBe(8);
    expect(counts.get(429)).toBe(PARALLEL - 8);
    const state = (await (await fetch(`${gw.url}/api/auth/session`)).json()) as { passwordSet: boolean };
    expect(state.passwordSet).toBe(false);
  } finally {
    await gw.stop();
  }
});

describe("AttemptLimiter (fake clock)", () => {
  test("counts before the check, refunds a success, slides the window", () => {
    const limiter = new AttemptLimiter(3, 60_000);
    const t0 = 1_000_000;
    const a = [limiter.begin("x", t0), limiter.begin("x", t0 + 1), limiter.begin("x", t0 + 2)];
    expect(() => limiter.begin("x", t0 + 3)).toThrow(/Too many/);
    a[1]!.succeeded();
    a[1]!.succeeded();
    expect(limiter.count("x", t0 + 3)).toBe(2);
    limiter.begin("x", t0 + 4);
    expect(() => limiter.begin("x", t0 + 5)).toThrow(/Too many/);
    // The first attempt ages out after the window.
    expect(limiter.count("x", t0 + 60_001)).toBe(2);
    limiter.begin("x", t0 + 60_001);
    expect(() => limiter.begin("y", t0)).not.toThrow();
  });
});
