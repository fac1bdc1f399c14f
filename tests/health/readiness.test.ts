import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "ready-a" }, { id: "ready-b" }] });
});
afterAll(async () => {
  await env.stop();
});

const ready = async () => {
  const res = await fetch(`${env.gw.url}/health/ready`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe("/health/ready tells the truth", () => {
  test("ready with counts while an account is usable", async () => {
    const r = await ready();
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      status: "ready",
      accounts: {
        total: 2,
        usable: 2,
        byStatus: {
          active: 2,
          rate_limited: 0,
          quota_exceeded: 0,
          paused: 0,
          reauth_required: 0,
          deactivated: 0,
        },
      },
    });
  });

  test("503 no_usable_account once every account is paused; /health stays 200; back when resumed", async () => {
    for (const id of ["ready-a", "ready-b"]) {
      const res = await fetch(`${env.gw.url}/api/accounts/${id}/pause`, { method: "POST" });
      expect(res.status).toBe(200);
    }
    const r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.status).toBe("unavailable");
    expect(r.body.reason).toBe("no_usable_account");
    expect(r.body.accounts).toMatchObject({ total: 2, usable: 0, byStatus: { paused: 2, active: 0 } });
    expect((await fetch(`${env.gw.url}/health`)).status).toBe(200);

    await fetch(`${env.gw.url}/api/accounts/ready-b/reactivate`, { method: "POST" });
    const back = await ready();
    expect(back.status).toBe(200);
    expect(back.body.accounts).toMatchObject({ usable: 1, byStatus: { paused: 1, active: 1 } });
  });

  test("an account in backoff or rate-limited before its reset is not counted usable", async () => {
    const now = Date.now();
    await env.seed({ id: "ready-c", status: "rate_limited", resetAt: now + 60_000 });
    await env.seed({ id: "ready-d", cooldownUntil: now + 60_000 });
    await fetch(`${env.gw.url}/api/accounts/ready-b/pause`, { method: "POST" });
    const r = await ready();
    expect(r.status).toBe(503);
    expect(r.body.accounts).toMatchObject({ total: 4, usable: 0, byStatus: { rate_limited: 1, active: 1 } });
  });
});
