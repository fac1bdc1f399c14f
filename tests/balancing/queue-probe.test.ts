/**
 * Issue 9, item 11: the queue wait is one budget per request (`CODEX_LB_ACCOUNT_QUEUE_WAIT_MS`),
 * not one per account tried (it was about 3× with three full accounts); and when an account's
 * backoff ends, one probe request goes to it first instead of every waiting request at once.
 * Real gateway and plugins over HTTP on 127.0.0.1, one fake Codex backend; the queue deadline runs
 * on the gateway's clock, so the budget test moves a FakeClock instead of sleeping.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv | null = null;
afterEach(async () => {
  await env?.stop();
  env = null;
});

const codex = (e: ProxyEnv) =>
  fetch(`${e.gw.url}/backend-api/codex/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: "hi" }] }),
  });

/** A promise the test settles when the fake upstream may answer. */
function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

const queuedTotal = (e: ProxyEnv, ids: readonly string[]) => {
  const leases = e.gw.running.gateway.services.provider("leases");
  return ids.reduce((n, id) => n + (leases.queued?.(id) ?? 0), 0);
};

describe("one queue budget per request", () => {
  test("with three full accounts a request waits CODEX_LB_ACCOUNT_QUEUE_WAIT_MS once, then 429 proxy_overloaded", async () => {
    const clock = new FakeClock(Date.now());
    const ids = ["a", "b", "c"];
    env = await startProxyEnv({
      clock,
      accounts: ids.map((id) => ({ id })),
      env: {
        CODEX_LB_ACCOUNT_MAX_STREAMS: "1",
        CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "60000",
        // The held requests wait for headers on the same clock: longer than the time moved here.
        CODEX_LB_UPSTREAM_CONNECT_TIMEOUT_SECONDS: "3600",
      },
    });
    const e = env;
    const hold = gate();
    for (const id of ids)
      e.fake.script(`chatgpt-${id}`, { kind: "text", text: `held ${id}`, after: hold.promise });
    // One stream in flight on each account (the upstream holds its answer).
    const held = ids.map(() => codex(e));
    expect(await eventually(() => e.fake.requests.length === 3, 10_000)).toBe(true);
    expect(ids.map((id) => e.inFlight(id))).toEqual([1, 1, 1]);

    let answer: Response | null = null;
    const fourth = codex(e).then((r) => (answer = r));
    expect(await eventually(() => queuedTotal(e, ids) === 1, 10_000)).toBe(true);
    // The budget passes on the gateway's clock: the request is refused now, without waiting the
    // budget again on the second and third account (the old behaviour: 60 s more per account).
    await clock.advance(60_000);
    expect(await eventually(() => answer !== null, 10_000)).toBe(true);
    await fourth;
    const res = answer as unknown as Response;
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("60");
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("proxy_overloaded");
    expect(queuedTotal(e, ids)).toBe(0);
    // Only the three held requests reached the upstream.
    expect(e.fake.requests.length).toBe(3);

    hold.open();
    for (const r of await Promise.all(held)) {
      expect(r.status).toBe(200);
      expect(await r.text()).toContain("response.completed");
    }
  });
});

/** Puts account `id` in a backoff (three failures in a row) that has just ended. */
async function backoffEnded(e: ProxyEnv, id: string) {
  const until = e.gw.running.gateway.services.now() - 1;
  for (let i = 0; i < 3; i++)
    await e.gw.running.gateway.services.apply(
      [{ type: "account.cooldown", accountId: id, until, reason: "test" }],
      {
        source: "test",
      },
    );
  const snap = await e.gw.running.gateway.services.accounts.get(id);
  expect(snap).toMatchObject({ failureStreak: 3, cooldownUntil: until });
}

describe("a backoff's end: one probe first", () => {
  test("five waiting requests: one goes upstream; after its success the other four follow", async () => {
    env = await startProxyEnv({
      accounts: [{ id: "a" }],
      env: { CODEX_LB_ACCOUNT_MAX_STREAMS: "8", CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "60000" },
    });
    const e = env;
    await backoffEnded(e, "a");
    const probe = gate();
    e.fake.script("chatgpt-a", { kind: "text", text: "probe answer", after: probe.promise });
    const all = Array.from({ length: 5 }, () => codex(e));
    // The probe is upstream; the other four wait behind it (the stream cap of 8 is not what holds them).
    expect(await eventually(() => queuedTotal(e, ["a"]) === 4 && e.fake.requests.length === 1, 10_000)).toBe(
      true,
    );
    expect(e.fake.requests.length).toBe(1);
    expect(e.inFlight("a")).toBe(1);

    probe.open();
    const answers = await Promise.all(all);
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(await r.text()).toContain("response.completed");
    }
    expect(e.fake.requests.length).toBe(5);
    // The probe's success cleared the backoff.
    expect(
      await eventually(async () => {
        const s = await e.gw.running.gateway.services.accounts.get("a");
        return s?.failureStreak === 0 && s.cooldownUntil === null;
      }),
    ).toBe(true);
  });

  test("a failed probe backs the account off again; the requests behind it get 503 no_accounts with Retry-After, not the upstream", async () => {
    env = await startProxyEnv({
      accounts: [{ id: "a" }],
      env: { CODEX_LB_ACCOUNT_MAX_STREAMS: "8", CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "60000" },
    });
    const e = env;
    await backoffEnded(e, "a");
    const probe = gate();
    e.fake.script("chatgpt-a", {
      kind: "http_error",
      status: 500,
      body: { error: { type: "server_error", message: "still broken" } },
      after: probe.promise,
    });
    const all = Array.from({ length: 5 }, () => codex(e));
    expect(await eventually(() => queuedTotal(e, ["a"]) === 4 && e.fake.requests.length === 1, 10_000)).toBe(
      true,
    );
    expect(e.fake.requests.length).toBe(1);

    probe.open();
    const answers = await Promise.all(all);
    const statuses = answers.map((r) => r.status).sort();
    // The probe's own answer is the upstream's failure, passed on; the four behind it are told when
    // to come back.
    expect(statuses).toEqual([500, 503, 503, 503, 503]);
    for (const r of answers.filter((a) => a.status === 503)) {
      const body = (await r.json()) as { error: { code: string } };
      expect(body.error.code).toBe("no_accounts");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    // Only the probe reached the upstream.
    expect(e.fake.requests.length).toBe(1);
    const s = await e.gw.running.gateway.services.accounts.get("a");
    expect(s!.failureStreak).toBe(4);
    expect(s!.cooldownUntil).toBeGreaterThan(e.gw.running.gateway.services.now());
  });

  test("with a healthy account beside it, requests go there while the probe is in flight", async () => {
    env = await startProxyEnv({
      accounts: [{ id: "a" }, { id: "b" }],
      env: { CODEX_LB_ACCOUNT_MAX_STREAMS: "8", CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "60000" },
    });
    const e = env;
    await backoffEnded(e, "a");
    const probe = gate();
    e.fake.script("chatgpt-a", { kind: "text", text: "probe answer", after: probe.promise });
    // fill_first prefers a: the first request probes it, the next ones go to b at once.
    const first = codex(e);
    expect(await eventually(() => e.fake.requests.length === 1, 10_000)).toBe(true);
    const rest = await Promise.all(Array.from({ length: 4 }, () => codex(e)));
    for (const r of rest) expect(r.status).toBe(200);
    expect(e.fake.requests.map((r) => r.chatgptAccountId)).toEqual([
      "chatgpt-a",
      "chatgpt-b",
      "chatgpt-b",
      "chatgpt-b",
      "chatgpt-b",
    ]);
    probe.open();
    expect((await first).status).toBe(200);
  });
});
