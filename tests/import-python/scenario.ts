/**
 * The standard Python codex-lb install the import tests use, and a fingerprint of a folder (every
 * file's name, mode and SHA-256) to prove it was left byte-identical.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { FakeAuth, TokenBundle } from "../fakes/auth.ts";
import { newTotpSecret, type PythonStoreSpec } from "./python-fixture.ts";

export const PY_ADMIN_PASSWORD = "the old python password";

/** A key in the shared `sk-clb-` format. */
export function pyApiKey(): string {
  return `sk-clb-${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")}`;
}

export interface Scenario {
  readonly spec: PythonStoreSpec;
  /** Plain API keys by Python key id. */
  readonly keys: { readonly limited: string; readonly inactive: string; readonly open: string };
  readonly tokens: Readonly<Record<"active" | "reauth" | "limited" | "deleted" | "corrupt", TokenBundle>>;
  readonly totpSecret: string;
}

/** Five accounts (one active, one reauth_required, one rate limited, one being deleted, one with a broken token), three keys, etc. */
export function standardScenario(auth: FakeAuth, opts: { totp?: boolean; now?: number } = {}): Scenario {
  const now = opts.now ?? Date.now();
  const ident = (label: string) => ({
    email: `${label}@python.example`,
    chatgptAccountId: `acct-py-${label}`,
    chatgptUserId: `user-py-${label}`,
    planType: label === "active" ? "pro" : "plus",
  });
  const tokens = {
    active: auth.issue(ident("active")),
    reauth: auth.issue(ident("reauth")),
    limited: auth.issue(ident("limited")),
    deleted: auth.issue(ident("deleted")),
    corrupt: auth.issue(ident("corrupt")),
  };
  const acc = (label: keyof typeof tokens, extra: Partial<PythonStoreSpec["accounts"][number]> = {}) => ({
    id: `py_${label}`,
    ...ident(label),
    tokens: tokens[label],
    ...extra,
  });
  const keys = { limited: pyApiKey(), inactive: pyApiKey(), open: pyApiKey() };
  const totpSecret = newTotpSecret();
  const spec: PythonStoreSpec = {
    accounts: [
      acc("active", { routingPolicy: "burn_first", alias: "main" }),
      acc("reauth", { status: "reauth_required", reason: "refresh_token_reused" }),
      acc("limited", {
        status: "rate_limited",
        reason: "usage_limit_reached",
        resetAt: Math.floor(now / 1000) + 7200,
        blockedAt: Math.floor(now / 1000) - 60,
      }),
      acc("deleted", { deleteRequested: true }),
      acc("corrupt", { corruptToken: true }),
    ],
    apiKeys: [
      {
        id: "key-limited",
        name: "ci bot",
        key: keys.limited,
        allowedModels: '["gpt-5.2", "gpt-5.2-codex"]',
        createdAtMs: now - 3 * 86_400_000,
        limits: [
          { type: "total_tokens", window: "daily", max: 1000, current: 10 },
          { type: "cost_usd", window: "7d", max: 2_500_000 },
          { type: "credits", window: "monthly", max: 50 },
          { type: "output_tokens", window: "weekly", max: 9000, modelFilter: "gpt-5.2-codex" },
        ],
      },
      {
        id: "key-inactive",
        name: "old laptop",
        key: keys.inactive,
        allowedModels: "gpt-5.2, gpt-5.2-codex",
        isActive: false,
        expiresAtMs: now + 30 * 86_400_000,
        createdAtMs: now - 40 * 86_400_000,
      },
      { id: "key-open", name: "me", key: keys.open, createdAtMs: now - 86_400_000 },
    ],
    firewall: ["127.0.0.1", "10.1.2.3", "2001:db8::1", "not-an-address"],
    sticky: [
      { key: "sess-1", kind: "codex_session", accountId: "py_active", updatedAtMs: now - 60_000 },
      { key: "thread-1", kind: "sticky_thread", accountId: "py_active", updatedAtMs: now - 120_000 },
      { key: "cache-1", kind: "prompt_cache", accountId: "py_limited", updatedAtMs: now - 30_000 },
      { key: "cache-old", kind: "prompt_cache", accountId: "py_active", updatedAtMs: now - 5 * 86_400_000 },
      { key: "sess-gone", kind: "codex_session", accountId: "py_deleted", updatedAtMs: now - 60_000 },
      {
        key: "platform-1",
        kind: "prompt_cache",
        accountId: null,
        provider: "openai_platform",
        updatedAtMs: now - 60_000,
      },
    ],
    settings: {
      routingStrategy: "round_robin",
      stickyTtlSeconds: 3600,
      apiKeyAuthEnabled: true,
      password: PY_ADMIN_PASSWORD,
      totpSecret: opts.totp === false ? null : totpSecret,
      totpLastStep: opts.totp === false ? null : Math.floor(now / 30_000) - 10,
    },
    requestLogs: 25,
  };
  return { spec, keys, tokens, totpSecret };
}

/** Every file under `dir` (recursively): relative name, mode and SHA-256 of the bytes. */
export function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) walk(p, r);
      else
        out[r] =
          `${(st.mode & 0o777).toString(8)} ${st.mtimeMs} ${new Bun.CryptoHasher("sha256").update(readFileSync(p)).digest("hex")}`;
    }
  };
  walk(dir, "");
  return out;
}
