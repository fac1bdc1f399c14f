import { describe, expect, test } from "bun:test";
import {
  base32Decode,
  base32Encode,
  hotp,
  newTotpSecret,
  otpauthUri,
  stepAt,
  totpAt,
  verifyTotp,
} from "../../src/access/admin-auth/totp.ts";

const rfcSecret = new TextEncoder().encode("12345678901234567890");

describe("HOTP (RFC 4226 appendix D)", () => {
  const expected = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
  ];
  test.each(expected.map((code, counter) => [counter, code] as const))(
    "counter %d → %s",
    async (counter, code) => {
      expect(await hotp(rfcSecret, counter)).toBe(code);
    },
  );
});

describe("TOTP SHA-1 (RFC 6238 appendix B, 8 digits)", () => {
  const cases: [number, string][] = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];
  test.each(cases)("t=%d → %s", async (t, code) => {
    expect(await hotp(rfcSecret, stepAt(t * 1000), 8)).toBe(code);
  });
});

describe("base32", () => {
  test.each([
    ["", ""],
    ["f", "MY"],
    ["fo", "MZXQ"],
    ["foo", "MZXW6"],
    ["foob", "MZXW6YQ"],
    ["fooba", "MZXW6YTB"],
    ["foobar", "MZXW6YTBOI"],
  ])("%p ↔ %p (RFC 4648 vectors)", (plain, encoded) => {
    expect(base32Encode(new TextEncoder().encode(plain))).toBe(encoded);
    expect(new TextDecoder().decode(base32Decode(`${encoded.toLowerCase()}==`)!)).toBe(plain);
  });
  test("a character outside the alphabet is refused", () => {
    expect(base32Decode("MZ1W")).toBeNull();
  });
  test("new secrets are 160 random bits", () => {
    const a = newTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(a)!.length).toBe(20);
    expect(newTotpSecret()).not.toBe(a);
  });
});

describe("verifyTotp", () => {
  const secret = base32Encode(rfcSecret);
  const now = 1_700_000_000_000;
  const step = stepAt(now);

  test("accepts the current step and one step either side, refuses two away", async () => {
    for (const [offset, ok] of [
      [-2, false],
      [-1, true],
      [0, true],
      [1, true],
      [2, false],
    ] as const) {
      const code = await totpAt(secret, now + offset * 30_000);
      expect(await verifyTotp(secret, code, now, null)).toBe(ok ? step + offset : null);
    }
  });

  test("a code is accepted once: its step must be newer than the last accepted one", async () => {
    const code = await totpAt(secret, now);
    const accepted = await verifyTotp(secret, code, now, null);
    expect(accepted).toBe(step);
    expect(await verifyTotp(secret, code, now, accepted)).toBeNull();
    expect(await verifyTotp(secret, await totpAt(secret, now + 30_000), now, accepted)).toBe(step + 1);
  });

  test("malformed codes are refused", async () => {
    for (const bad of ["", "12345", "1234567", "abcdef", "12 34 5x"]) {
      expect(await verifyTotp(secret, bad, now, null)).toBeNull();
    }
  });

  test("spaces inside a code are ignored", async () => {
    const code = await totpAt(secret, now);
    expect(await verifyTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, now, null)).toBe(step);
  });

  test("otpauth URI carries the secret and parameters", () => {
    expect(otpauthUri("ABC")).toBe(
      "otpauth://totp/codex-lb%3Aadmin?secret=ABC&issuer=codex-lb&algorithm=SHA1&digits=6&period=30",
    );
  });
});
