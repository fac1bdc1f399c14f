/**
 * The fault suite (issue 9): a fault-injecting upstream (tests/fakes/faults.ts, a raw TCP server in
 * front of the regular fakes) resets the connection before and after the response headers, sends
 * garbage instead of SSE, hangs, drips a valid answer a few bytes at a time, and sends an event over
 * the gateway's 16 MiB limit; the auth server rotates a refresh token and answers after the refresh
 * timeout. One test per mode checks what the client gets (a JSON error envelope before the first
 * byte, an SSE `response.failed` after it; never an internal error), that the gateway still serves,
 * and the account's state afterwards. The gateway runs on a FakeClock: timeouts pass by moving it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import type { AccountSnapshot } from "../../src/core/types.ts";
import { type FaultMode, type FaultServer, startFaultServer } from "../fakes/faults.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
let faults: FaultServer;
let clock: FakeClock;
beforeAll(async () => {
  clock = new FakeClock(Date.now());
  env = await startProxyEnv({
    clock,
    accounts: [{ id: "a" }],
    front: (url) => {
      faults = startFaultServer(url);
      return faults.url;
    },
    env: {
      CODEX_LB_UPSTREAM_CONNECT_TIMEOUT_SECONDS: "30",
      CODEX_LB_REFRESH_TIMEOUT_SECONDS: "2",
    },
  });
});
afterAll(async () => {
  await env.stop();
  await faults.stop();
});
afterEach(async () => {
  faults.set("chatgpt-a", null);
  // Every fault leaves a gateway that serves the next request, and that success clears any streak.
  const res = await ask();
  expect(res.status).toBe(200);
  expect(await res.text()).toContain("response.completed");
  expect(await account()).toMatchObject({ status: "active", failureStreak: 0 });
});

const ask = () =>
  fetch(`${env.gw.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi", stream: true }),
  });

const account = async (): Promise<AccountSnapshot> =>
  (await env.gw.running.gateway.services.accounts.get("a"))!;

/** A JSON error envelope (the answer before the first byte). */
async function jsonError(res: Response): Promise<{ code: string; message: string; type: string }> {
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: { code: string; message: string; type: string } };
  expect(typeof body.error.message).toBe("string");
  return body.error;
}

/** The events of an SSE answer, as parsed JSON. */
async function sseEvents(res: Response): Promise<{ type: string; [k: string]: unknown }[]> {
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)) as { type: string });
}

async function withFault(mode: FaultMode): Promise<Response> {
  faults.set("chatgpt-a", mode);
  const before = faults.injected.length;
  const res = await ask();
  expect(faults.injected.slice(before).map((f) => f.mode)).toEqual([mode]);
  return res;
}

describe("before the first byte: a JSON error, the account counts a failure", () => {
  test("reset before headers → 502 upstream_unavailable; streak 1, no backoff yet", async () => {
    const res = await withFault("reset_before_headers");
    expect(res.status).toBe(502);
    const err = await jsonError(res);
    expect(err.code).toBe("upstream_unavailable");
    // What happened, without the runtime's advice to its developers.
    expect(err.message).toContain("closed");
    expect(err.message).not.toContain("verbose");
    const a = await account();
    expect(a).toMatchObject({ status: "active", failureStreak: 1 });
    expect(a.cooldownUntil ?? 0).toBeLessThanOrEqual(clock.now());
  });

  test("garbage instead of SSE events → 502 upstream_unavailable, none of the garbage passed on; streak 1", async () => {
    const res = await withFault("garbage_sse");
    expect(res.status).toBe(502);
    const err = await jsonError(res);
    expect(err.code).toBe("upstream_unavailable");
    expect(err.message).toContain("not Codex events");
    expect(await account()).toMatchObject({ status: "active", failureStreak: 1 });
  });

  test("hang → released when the header deadline passes on the gateway's clock: 504 upstream_timeout; the hung call is closed", async () => {
    faults.set("chatgpt-a", "hang");
    let answer: Response | null = null;
    const pending = ask().then((r) => (answer = r));
    expect(await eventually(() => faults.injected.at(-1)?.mode === "hang", 10_000)).toBe(true);
    const hungBefore = faults.hungClosed;
    await clock.advance(30_000);
    expect(await eventually(() => answer !== null, 10_000)).toBe(true);
    await pending;
    const res = answer as unknown as Response;
    expect(res.status).toBe(504);
    expect((await jsonError(res)).code).toBe("upstream_timeout");
    expect(await eventually(() => faults.hungClosed === hungBefore + 1, 10_000)).toBe(true);
    expect(await account()).toMatchObject({ status: "active", failureStreak: 1 });
  });
});

describe("after the first byte: an SSE response.failed, the account is not blamed", () => {
  test("reset after headers → 200 whose stream ends with response.failed stream_incomplete", async () => {
    const res = await withFault("reset_after_headers");
    expect(res.status).toBe(200);
    const events = await sseEvents(res);
    expect(events[0]!.type).toBe("response.created");
    const last = events.at(-1) as { type: string; response: { error: { code: string; message: string } } };
    expect(last.type).toBe("response.failed");
    expect(last.response.error.code).toBe("stream_incomplete");
    expect(last.response.error.message).not.toContain("verbose");
    expect(await account()).toMatchObject({ status: "active", failureStreak: 0 });
  });

  test("an event over 16 MiB → response.failed naming the limit; the gateway stays up", async () => {
    const res = await withFault("huge_event");
    expect(res.status).toBe(200);
    const events = await sseEvents(res);
    const last = events.at(-1) as { type: string; response: { error: { code: string; message: string } } };
    expect(last.type).toBe("response.failed");
    expect(last.response.error.message).toContain("16 MiB");
    expect((await fetch(`${env.gw.url}/health`)).status).toBe(200);
    expect(await account()).toMatchObject({ status: "active", failureStreak: 0 });
  });
});

describe("a slow but valid answer", () => {
  test("dripped a few bytes at a time (split inside multi-byte characters) → the whole answer, intact", async () => {
    const res = await withFault("drip");
    expect(res.status).toBe(200);
    const events = await sseEvents(res);
    const text = events
      .filter((e) => e.type === "response.output_text.delta")
      .map((e) => e.delta as string)
      .join("");
    expect(text).toBe(faults.dripText);
    expect(events.at(-1)!.type).toBe("response.completed");
    expect(await account()).toMatchObject({ status: "active", failureStreak: 0 });
  });
});

describe("the auth server rotates the refresh token and answers after the refresh timeout", () => {
  test("the request is released with a JSON error; the late answer is stored; the next request is served with the new token", async () => {
    const services = env.gw.running.gateway.services;
    // An access token about to expire: the next request must refresh first.
    const old = env.auth.issue(
      { email: "a@example.test", chatgptAccountId: "chatgpt-a", chatgptUserId: "user-a", planType: "plus" },
      { expiresInSeconds: 10, now: clock.now() },
    );
    expect(await env.gw.running.gateway.accounts.saveTokens("a", old)).toBe("saved");
    let answerRefresh!: () => void;
    env.auth.state.holdAnswer = new Promise<void>((r) => {
      answerRefresh = r;
    });
    try {
      const calls0 = env.auth.state.refreshCalls;
      let answer: Response | null = null;
      const pending = ask().then((r) => (answer = r));
      expect(await eventually(() => env.auth.state.refreshCalls === calls0 + 1, 10_000)).toBe(true);
      // Rotated: the old refresh token is spent, the answer is on its way (held).
      expect(env.auth.state.refreshTokens.has(old.refreshToken)).toBe(false);
      await clock.advance(2_000);
      expect(await eventually(() => answer !== null, 10_000)).toBe(true);
      await pending;
      const res = answer as unknown as Response;
      expect(res.status).toBe(502);
      expect((await jsonError(res)).code).toBe("upstream_unavailable");

      // The answer arrives late: stored all the same.
      answerRefresh();
      expect(
        await eventually(async () => {
          const c = await services.accounts.credentials("a", { fresh: true });
          return c !== null && c.refreshToken !== old.refreshToken;
        }, 10_000),
      ).toBe(true);
      const stored = (await services.accounts.credentials("a", { fresh: true }))!;
      expect(env.auth.state.refreshTokens.has(stored.refreshToken)).toBe(true);
      expect(await account()).toMatchObject({ status: "active" });
    } finally {
      env.auth.state.holdAnswer = null;
      answerRefresh();
    }
    // The next request goes out with the new access token; a forced refresh later uses the new
    // refresh token (no refresh_token_reused, no reauth_required).
    const stored = (await services.accounts.credentials("a", { fresh: true }))!;
    const res = await ask();
    expect(res.status).toBe(200);
    await res.text();
    expect(env.fake.requests.at(-1)!.headers.get("authorization")).toBe(`Bearer ${stored.accessToken}`);
    const again = await services.provider("credentials").get("a", { forceRefresh: true });
    expect(again.accessToken).not.toBe(stored.accessToken);
    expect(await account()).toMatchObject({ status: "active" });
  });
});
