/**
 * Balancing end to end over real HTTP (issue 5 acceptance): the real gateway with the real
 * built-in plugins, driven by the real `openai` SDK, in front of one fake Codex backend.
 * Which account served a request is read from what the fake received (`chatgpt-account-id`).
 * Stream leases and the concurrency cap are in e2e-http-streams.test.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { planCapacities } from "../../plugins/balancing/capacity.ts";
import { getSnapshot } from "../../src/accounts/snapshots.ts";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv | null = null;
afterEach(async () => {
  await env?.stop();
  env = null;
});

const sdk = (e: ProxyEnv) => new OpenAI({ baseURL: `${e.gw.url}/v1`, apiKey: "sk-unused", maxRetries: 0 });
const servedBy = (e: ProxyEnv, from = 0) => e.fake.requests.slice(from).map((r) => r.chatgptAccountId);

const WEEK_MIN = 7 * 24 * 60;

interface Seeded {
  readonly id: string;
  readonly plan: keyof typeof planCapacities;
  /** Weekly window used, percent (≥ 10 so no pace boost applies with the reset a week away). */
  readonly weeklyUsed: number;
}

/**
 * Stores one usage reading per account (5-hour window low, weekly reset about a week away) and
 * makes the fake `/wham/usage` report the same, so the background usage poll cannot change it.
 */
async function seedUsage(e: ProxyEnv, accounts: readonly Seeded[]) {
  const now = Date.now();
  const weeklyReset = now + WEEK_MIN * 60_000 - 3_600_000;
  const shortReset = now + 2 * 3_600_000;
  const byChatgptId = new Map(accounts.map((a) => [`chatgpt-${a.id}`, a]));
  e.usage.respond = (_token, chatgptId) => {
    const a = chatgptId ? byChatgptId.get(chatgptId) : undefined;
    if (!a) return undefined;
    return Response.json({
      plan_type: a.plan,
      rate_limit: {
        allowed: true,
        primary_window: { used_percent: 20, limit_window_seconds: 18_000, reset_at: shortReset / 1000 },
        secondary_window: {
          used_percent: a.weeklyUsed,
          limit_window_seconds: WEEK_MIN * 60,
          reset_at: weeklyReset / 1000,
        },
      },
      credits: null,
    });
  };
  for (const a of accounts) {
    await e.gw.running.gateway.accounts.recordUsage(a.id, {
      primary: { usedPercent: 20, windowMinutes: 300, resetAt: shortReset },
      secondary: { usedPercent: a.weeklyUsed, windowMinutes: WEEK_MIN, resetAt: weeklyReset },
      credits: null,
    });
  }
}

describe("capacity_weighted over HTTP", () => {
  test("300 requests split in proportion to remaining weekly credits (each share within 4σ)", async () => {
    const accounts: Seeded[] = [
      { id: "a", plan: "pro", weeklyUsed: 80 },
      { id: "b", plan: "plus", weeklyUsed: 10 },
      { id: "c", plan: "plus", weeklyUsed: 60 },
    ];
    env = await startProxyEnv({
      accounts: accounts.map((a) => ({ id: a.id, planType: a.plan })),
      env: { CODEX_LB_ROUTING_STRATEGY: "capacity_weighted" },
    });
    await seedUsage(env, accounts);
    // The documented formula: weekly credits of the plan × unused fraction of the week.
    const remaining = accounts.map((a) => planCapacities[a.plan].long * (1 - a.weeklyUsed / 100));
    const total = remaining.reduce((s, x) => s + x, 0);

    const client = sdk(env);
    const N = 300;
    const WORKERS = 5; // below the default stream cap, so no account is ever skipped as full
    let next = 0;
    let ok = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (next < N) {
          next++;
          const r = await client.responses.create({ model: "gpt-5.2", input: "hi" });
          if (r.output_text === "Hello from the fake Codex backend.") ok++;
        }
      }),
    );
    expect(ok).toBe(N);
    const served = servedBy(env);
    expect(served.length).toBe(N);
    accounts.forEach((a, k) => {
      const p = remaining[k]! / total;
      const count = served.filter((id) => id === `chatgpt-${a.id}`).length;
      const sigma = Math.sqrt(N * p * (1 - p));
      expect({ account: a.id, within4Sigma: Math.abs(count - N * p) <= 4 * sigma, count }).toEqual({
        account: a.id,
        within4Sigma: true,
        count,
      });
    });
  });
});

const usageLimit = {
  kind: "http_error" as const,
  status: 429,
  body: {
    error: {
      type: "usage_limit_reached",
      code: "usage_limit_reached",
      message: "The usage limit has been reached",
      resets_in_seconds: 3600,
    },
  },
};

describe("sticky sessions over HTTP", () => {
  test("a session-id stays on one account, moves once it hits usage_limit_reached, and stays on the new one", async () => {
    // round_robin would rotate every request: only the session binding keeps them together.
    env = await startProxyEnv({
      accounts: [{ id: "a" }, { id: "b" }, { id: "c" }],
      env: { CODEX_LB_ROUTING_STRATEGY: "round_robin" },
    });
    const e = env;
    const client = sdk(e);
    const inSession = async () => {
      const from = e.fake.requests.length;
      const r = await client.responses.create(
        { model: "gpt-5.2", input: "continue" },
        { headers: { "session-id": "sess-e2e-1" } },
      );
      expect(r.output_text).toBe("Hello from the fake Codex backend.");
      return servedBy(e, from);
    };
    const anonymous = async () => {
      const from = e.fake.requests.length;
      await client.responses.create({ model: "gpt-5.2", input: "other" });
      return servedBy(e, from);
    };

    const first = (await inSession())[0]!;
    const unbound = new Set<string | null>();
    for (let i = 0; i < 5; i++) {
      expect(await inSession()).toEqual([first]);
      for (const id of await anonymous()) unbound.add(id);
    }
    // Requests without the header did rotate (the stickiness is the session's, not the strategy's).
    expect(unbound.size).toBeGreaterThanOrEqual(2);

    e.fake.script(first!, usageLimit);
    const moved = await inSession();
    expect(moved.length).toBe(2);
    expect(moved[0]).toBe(first);
    const second = moved[1]!;
    expect(second).not.toBe(first);
    const firstId = first.replace(/^chatgpt-/, "");
    expect((await getSnapshot(e.db, firstId))!.status).toBe("rate_limited");

    const after = new Set<string | null>();
    for (let i = 0; i < 5; i++) {
      expect(await inSession()).toEqual([second]);
      for (const id of await anonymous()) after.add(id);
    }
    // The rate-limited account is out of rotation for requests without a session too.
    expect(after.size).toBeGreaterThan(0);
    expect(after.has(first)).toBe(false);
    const binding = await e.db
      .selectFrom("sticky_sessions")
      .selectAll()
      .where("key", "=", "sess-e2e-1")
      .executeTakeFirst();
    expect(binding?.account_id).toBe(second.replace(/^chatgpt-/, ""));
  });
});
