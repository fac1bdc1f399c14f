/**
 * Balancing end to end over real HTTP (issue 5 acceptance), stream leases: clients that abort
 * mid-stream give their slots back, and the per-account stream cap answers `429 proxy_overloaded`
 * after the queue wait. Real gateway and plugins, one fake Codex backend, fetch on 127.0.0.1.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv | null = null;
afterEach(async () => {
  await env?.stop();
  env = null;
});

const codex = (e: ProxyEnv, signal?: AbortSignal) =>
  fetch(`${e.gw.url}/backend-api/codex/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: "hi" }] }),
    signal,
  });

const dec = new TextDecoder();
async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let text = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) return text;
    text += dec.decode(r.value);
  }
}

describe("leases when clients abort", () => {
  test("100 streams aborted after their first chunk leave no stream in flight; the gateway still serves", async () => {
    const ids = ["a", "b", "c"];
    env = await startProxyEnv({
      accounts: ids.map((id) => ({ id })),
      // fill_first (the bench default) fills a, then b, then c: every account holds aborted streams.
      env: { CODEX_LB_ACCOUNT_MAX_STREAMS: "40" },
    });
    const e = env;
    // The rest of each answer would come only long after the test: only the abort can end them.
    for (const id of ids)
      e.fake.always(`chatgpt-${id}`, { kind: "slow", text: "never finished", delayMs: 60_000 });

    const N = 100;
    const firstChunks = await Promise.all(
      Array.from({ length: N }, async () => {
        const ac = new AbortController();
        const res = await codex(e, ac.signal);
        expect(res.status).toBe(200);
        const first = dec.decode((await res.body!.getReader().read()).value);
        ac.abort();
        return first;
      }),
    );
    expect(firstChunks.every((c) => c.includes("response.created"))).toBe(true);
    const perAccount = ids.map(
      (id) => e.fake.requests.filter((r) => r.chatgptAccountId === `chatgpt-${id}`).length,
    );
    expect(perAccount).toEqual([40, 40, 20]);

    expect(await eventually(() => ids.every((id) => e.inFlight(id) === 0), 5000)).toBe(true);
    // Every upstream call was cancelled too, none ran to its end.
    expect(await eventually(() => e.fake.aborted.length === N, 5000)).toBe(true);
    expect(e.fake.finished.length).toBe(0);

    for (const id of ids) e.fake.always(`chatgpt-${id}`, { kind: "text", text: "still here" });
    const res = await codex(e);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain("still here");
    expect(body).toContain("response.completed");
    expect(await eventually(() => ids.every((id) => e.inFlight(id) === 0))).toBe(true);
  });
});

describe("per-account stream cap over HTTP", () => {
  test("a second request waits the queue time, gets 429 proxy_overloaded with Retry-After; after the first ends a new one succeeds", async () => {
    // The queue wait runs on the gateway's clock: the test moves it instead of waiting 200 ms.
    const clock = new FakeClock(Date.now());
    env = await startProxyEnv({
      clock,
      accounts: [{ id: "solo" }],
      env: { CODEX_LB_ACCOUNT_MAX_STREAMS: "1", CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "200" },
    });
    const e = env;
    let finish!: () => void;
    const rest = new Promise<void>((r) => {
      finish = r;
    });
    e.fake.script("chatgpt-solo", { kind: "slow", text: "holding the slot", rest });

    const held = await codex(e);
    expect(held.status).toBe(200);
    const reader = held.body!.getReader();
    expect(dec.decode((await reader.read()).value)).toContain("response.created");
    expect(e.inFlight("solo")).toBe(1);

    const leases = e.gw.running.gateway.services.provider("leases");
    const t0 = clock.now();
    let answeredAt: number | null = null;
    const pending = codex(e).then((r) => {
      answeredAt = clock.now();
      return r;
    });
    expect(await eventually(() => leases.queued?.("solo") === 1, 10_000)).toBe(true);
    // Queued, not answered, until the queue time has passed on the gateway's clock.
    await clock.advance(199);
    await Bun.sleep(20);
    expect(answeredAt).toBeNull();
    await clock.advance(1);
    const refused = await pending;
    const waited = answeredAt! - t0;
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    const { error } = (await refused.json()) as { error: Record<string, unknown> };
    expect(error.code).toBe("proxy_overloaded");
    expect(error.type).toBe("rate_limit_error");
    // It queued for the slot before giving up, and never reached the upstream.
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(e.fake.requests.length).toBe(1);
    expect(e.fake.finished.length).toBe(0);

    finish();
    expect(await readAll(reader)).toContain("response.completed");
    expect(await eventually(() => e.inFlight("solo") === 0)).toBe(true);

    const after = await codex(e);
    expect(after.status).toBe(200);
    expect(await after.text()).toContain("response.completed");
    expect(e.fake.requests.length).toBe(2);
  });

  test("queued requests: one aborted by its client leaves the queue, the next gets the slot when the stream ends", async () => {
    env = await startProxyEnv({
      accounts: [{ id: "solo" }],
      env: { CODEX_LB_ACCOUNT_MAX_STREAMS: "1", CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "3000" },
    });
    const e = env;
    const leases = e.gw.running.gateway.services.provider("leases");
    let finish!: () => void;
    const rest = new Promise<void>((r) => {
      finish = r;
    });
    e.fake.script("chatgpt-solo", { kind: "slow", text: "short hold", rest });
    const held = await codex(e);
    const reader = held.body!.getReader();
    await reader.read();

    const ac = new AbortController();
    const gone = codex(e, ac.signal).catch((err: unknown) => err);
    const waiting = codex(e);
    expect(await eventually(() => leases.queued?.("solo") === 2)).toBe(true);
    ac.abort();
    expect(await gone).toBeInstanceOf(Error);
    expect(await eventually(() => leases.queued?.("solo") === 1)).toBe(true);

    finish();
    expect(await readAll(reader)).toContain("response.completed");
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("response.completed");
    // The aborted request never reached the upstream, and nothing is left held or queued.
    expect(e.fake.requests.length).toBe(2);
    expect(await eventually(() => e.inFlight("solo") === 0 && leases.queued?.("solo") === 0)).toBe(true);
  });
});
