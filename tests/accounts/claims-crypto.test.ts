import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  decodeJwtClaims,
  identityFromTokens,
  localAccountId,
  tokenExpiry,
} from "../../src/accounts/claims.ts";
import { loadOrCreateKey, TokenCipher } from "../../src/accounts/crypto.ts";
import { mintJwt, mintTokens } from "../fakes/jwt.ts";

describe("claims", () => {
  test("the namespaced https://api.openai.com/auth claims win over top-level ones", () => {
    const idToken = mintJwt({
      email: "Someone@Example.com",
      sub: "auth0|sub-1",
      chatgpt_account_id: "top-level-acct",
      chatgpt_plan_type: "free",
      "https://api.openai.com/auth": {
        chatgpt_account_id: "ns-acct",
        chatgpt_user_id: "user-9",
        chatgpt_plan_type: "Pro",
      },
    });
    expect(identityFromTokens(idToken)).toEqual({
      email: "someone@example.com",
      chatgptAccountId: "ns-acct",
      chatgptUserId: "user-9",
      planType: "pro",
    });
  });

  test("top-level claims are used when there is no namespaced object; sub is the seat fallback", () => {
    const idToken = mintJwt({
      email: "a@b.c",
      sub: "sub-2",
      chatgpt_account_id: "acct-2",
      chatgpt_plan_type: "team",
    });
    expect(identityFromTokens(idToken)).toEqual({
      email: "a@b.c",
      chatgptAccountId: "acct-2",
      chatgptUserId: "sub-2",
      planType: "team",
    });
  });

  test("an auth.json account_id overrides the claim", () => {
    const { idToken } = mintTokens({ email: "x@y.z", chatgptAccountId: "claim", chatgptUserId: "u" });
    expect(identityFromTokens(idToken, null, "override").chatgptAccountId).toBe("override");
  });

  test("garbage is no claims, never an exception", () => {
    expect(decodeJwtClaims("not-a-jwt")).toEqual({});
    expect(decodeJwtClaims("a.!!!.c")).toEqual({});
    expect(tokenExpiry("a.b.c")).toBeNull();
  });

  test("exp is read as epoch milliseconds (number or digit string)", () => {
    expect(tokenExpiry(mintJwt({ exp: 1_800_000_000 }))).toBe(1_800_000_000_000);
    expect(tokenExpiry(mintJwt({ exp: "1800000000" }))).toBe(1_800_000_000_000);
  });

  test("local ids: account id + email hash, account id, email hash, random", async () => {
    const both = await localAccountId({
      email: "a@b.c",
      chatgptAccountId: "acct",
      chatgptUserId: null,
      planType: null,
    });
    expect(both).toMatch(/^acct_[0-9a-f]{8}$/);
    expect(
      await localAccountId({ email: "a@b.c", chatgptAccountId: "acct", chatgptUserId: "z", planType: null }),
    ).toBe(both);
    expect(
      await localAccountId({ email: null, chatgptAccountId: "acct", chatgptUserId: null, planType: null }),
    ).toBe("acct");
    expect(
      await localAccountId({ email: "a@b.c", chatgptAccountId: null, chatgptUserId: null, planType: null }),
    ).toMatch(/^email_[0-9a-f]{12}$/);
    expect(
      await localAccountId({ email: null, chatgptAccountId: null, chatgptUserId: null, planType: null }),
    ).toMatch(/^local_[0-9a-f]{12}$/);
  });
});

describe("token cipher", () => {
  test("key file is created once with mode 0600 and reused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-key-"));
    try {
      const k1 = loadOrCreateKey(dir);
      expect(statSync(join(dir, "encryption.key")).mode & 0o777).toBe(0o600);
      const k2 = loadOrCreateKey(dir);
      expect(Buffer.from(k2).equals(Buffer.from(k1))).toBe(true);
      const c = new TokenCipher(k1);
      const blob = await c.encrypt("secret-token-value");
      expect(Buffer.from(blob).toString("latin1")).not.toContain("secret-token-value");
      expect(await new TokenCipher(k2).decrypt(blob)).toBe("secret-token-value");
      // Non-deterministic: the same plaintext encrypts differently each time.
      expect(Buffer.from(await c.encrypt("secret-token-value")).equals(Buffer.from(blob))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a wrong key fails with a message naming the key file, not the secret", async () => {
    const a = new TokenCipher(crypto.getRandomValues(new Uint8Array(32)));
    const b = new TokenCipher(crypto.getRandomValues(new Uint8Array(32)));
    const blob = await a.encrypt("secret-token-value");
    const err = await b.decrypt(blob).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("encryption.key");
    expect((err as Error).message).not.toContain("secret");
  });

  test("a malformed key file is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-key-"));
    try {
      writeFileSync(join(dir, "encryption.key"), "short\n");
      expect(() => loadOrCreateKey(dir)).toThrow("32-byte");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
