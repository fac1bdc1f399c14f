import { describe, expect, test } from "bun:test";
import { affinityKeyOf, MAX_KEY_LENGTH } from "../../plugins/balancing/affinity.ts";
import { LeasePool } from "../../plugins/balancing/leases.ts";
import { FakeClock } from "../../src/core/clock.ts";
import { GatewayError } from "../../src/core/errors.ts";

describe("affinity key", () => {
  const all = {
    "x-codex-turn-state": "turn-1",
    "session-id": "sess-dash",
    session_id: "sess-underscore",
    "thread-id": "thread-1",
  };
  test.each([
    ["turn state wins over everything", all, "cache-1", { key: "turn-1", kind: "turn_state" }],
    [
      "session-id next",
      { ...all, "x-codex-turn-state": "" },
      "cache-1",
      { key: "sess-dash", kind: "session" },
    ],
    [
      "session_id when session-id is absent",
      { session_id: "sess-underscore", "thread-id": "t" },
      "cache-1",
      { key: "sess-underscore", kind: "session" },
    ],
    ["thread-id next", { "thread-id": "thread-1" }, "cache-1", { key: "thread-1", kind: "thread" }],
    ["prompt_cache_key last", {}, "cache-1", { key: "cache-1", kind: "prompt_cache" }],
    ["blank values are ignored", { "session-id": "   " }, "  ", null],
    ["oversized values are ignored", { "session-id": "s".repeat(MAX_KEY_LENGTH + 1) }, null, null],
    ["nothing → no key", {}, null, null],
  ] as const)("%s", (_n, headers, promptCacheKey, expected) => {
    expect(affinityKeyOf(new Headers(headers as Record<string, string>), { promptCacheKey })).toEqual(
      expected as never,
    );
  });
});

function pool(maxStreams = 2, queueWaitMs = 50, clock = new FakeClock()) {
  return new LeasePool({
    maxStreams: () => maxStreams,
    queueWaitMs: () => queueWaitMs,
    timers: clock,
    now: () => clock.now(),
  });
}

describe("leases", () => {
  test("counts per account up to the cap; release frees; release twice frees once", async () => {
    const p = pool(2);
    const l1 = await p.acquire("a");
    const l2 = await p.acquire("a");
    const other = await p.acquire("b");
    expect([p.inFlight("a"), p.inFlight("b"), p.hasRoom("a")]).toEqual([2, 1, false]);
    l1.release();
    l1.release();
    expect(p.inFlight("a")).toBe(1);
    l2.release();
    other.release();
    expect([p.inFlight("a"), p.inFlight("b")]).toEqual([0, 0]);
    expect(p.stats()).toEqual({});
  });

  test("a full account makes the request wait; a release hands the slot over", async () => {
    const p = pool(1, 5_000);
    const first = await p.acquire("a");
    const waiting = p.acquire("a");
    expect(p.queued("a")).toBe(1);
    first.release();
    const second = await waiting;
    expect([p.inFlight("a"), p.queued("a")]).toEqual([1, 0]);
    second.release();
    expect(p.inFlight("a")).toBe(0);
  });

  test("waiters are served first come, first served", async () => {
    const p = pool(1, 5_000);
    const held = await p.acquire("a");
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) =>
      p.acquire("a").then((l) => {
        order.push(n);
        l.release();
      }),
    );
    held.release();
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3]);
    expect(p.inFlight("a")).toBe(0);
  });

  test("still full after the queue time: 429 proxy_overloaded with Retry-After", async () => {
    const clock = new FakeClock();
    const p = pool(1, 20, clock);
    const held = await p.acquire("a");
    const pending = p.acquire("a").catch((e: unknown) => e);
    await clock.advance(20);
    const err = await pending;
    expect(err).toBeInstanceOf(GatewayError);
    const g = err as GatewayError;
    expect([g.status, g.type, g.code]).toEqual([429, "rate_limit_error", "proxy_overloaded"]);
    expect(Number(g.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(p.queued("a")).toBe(0);
    held.release();
    expect(p.inFlight("a")).toBe(0);
  });

  test("an abort while queued leaves the queue and takes no slot", async () => {
    const p = pool(1, 5_000);
    const held = await p.acquire("a");
    const ac = new AbortController();
    const waiting = p.acquire("a", { signal: ac.signal }).catch((e: unknown) => e);
    expect(p.queued("a")).toBe(1);
    ac.abort();
    expect((await waiting) as DOMException).toHaveProperty("name", "AbortError");
    expect(p.queued("a")).toBe(0);
    held.release();
    expect(p.inFlight("a")).toBe(0);
  });

  test("an already aborted signal is refused at once", async () => {
    const ac = new AbortController();
    ac.abort();
    const p = pool();
    await expect(p.acquire("a", { signal: ac.signal })).rejects.toHaveProperty("name", "AbortError");
    expect(p.inFlight("a")).toBe(0);
  });

  test("100 streams aborted mid-way leave every account with zero in flight", async () => {
    const p = pool(8, 5_000);
    const accounts = ["a", "b", "c"];
    const controllers = Array.from({ length: 100 }, () => new AbortController());
    // 3 accounts × 8 slots: 24 granted at once, the other 76 queue.
    const pending = controllers.map((ac, i) =>
      p.acquire(accounts[i % 3]!, { signal: ac.signal }).then(
        (lease) => lease,
        (e: unknown) => e,
      ),
    );
    await Bun.sleep(0);
    expect(accounts.map((id) => p.inFlight(id))).toEqual([8, 8, 8]);
    expect(accounts.reduce((s, id) => s + p.queued(id), 0)).toBe(76);
    // Abort in a shuffled order; some callers also release explicitly (double release is harmless).
    for (const [i, ac] of controllers.entries()) if (i % 2 === 0) ac.abort();
    for (const [i, ac] of controllers.entries()) if (i % 2 === 1) ac.abort();
    const results = await Promise.all(pending);
    for (const r of results)
      if (r && typeof r === "object" && "release" in r) (r as { release(): void }).release();
    expect(accounts.map((id) => [p.inFlight(id), p.queued(id)])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(p.stats()).toEqual({});
  });

  test("the queue wait is one budget per request: time waited on other accounts is not waited again", async () => {
    const clock = new FakeClock();
    const p = pool(1, 2_000, clock);
    const held = [await p.acquire("a"), await p.acquire("b")];
    let settled: unknown = null;
    // Waited 1,500 ms elsewhere: 500 ms are left.
    const pending = p.acquire("b", { waitedMs: 1_500 }).then(
      (l) => (settled = l),
      (e: unknown) => (settled = e),
    );
    await clock.advance(499);
    expect(settled).toBeNull();
    await clock.advance(1);
    await pending;
    expect(settled).toBeInstanceOf(GatewayError);
    expect((settled as GatewayError).code).toBe("proxy_overloaded");
    // A spent budget is refused at once, without queueing.
    const spent = p.acquire("a", { waitedMs: 2_000 }).catch((e: unknown) => e);
    expect(p.queued("a")).toBe(0);
    expect(((await spent) as GatewayError).code).toBe("proxy_overloaded");
    for (const l of held) l.release();
  });

  test("a probe account takes one request at a time; the next waits for it, then the cap is back", async () => {
    const p = pool(4, 5_000);
    const probe = await p.acquire("a", { probe: true });
    const second = p.acquire("a", { probe: true });
    // The stream cap is 4, but a probe is in flight: the second request waits behind it.
    expect([p.inFlight("a"), p.queued("a")]).toEqual([1, 1]);
    probe.release();
    const l2 = await second;
    expect([p.inFlight("a"), p.queued("a")]).toEqual([1, 0]);
    // Once the account has served (the core no longer asks for a probe), the cap applies again.
    const more = await Promise.all([p.acquire("a"), p.acquire("a"), p.acquire("a")]);
    expect(p.inFlight("a")).toBe(4);
    for (const l of [l2, ...more]) l.release();
    expect(p.stats()).toEqual({});
  });
  test("waiters on every account share one deadline timer; each is refused at its own deadline, served oldest first", async () => {
    const clock = new FakeClock();
    const p = pool(1, 1_000, clock);
    const held = [await p.acquire("a"), await p.acquire("b")];
    const outcome: string[] = [];
    const wait = (id: string, label: string, waitedMs = 0) =>
      p.acquire(id, { waitedMs }).then(
        (l) => {
          outcome.push(`${label} served`);
          return l;
        },
        (e: unknown) => {
          outcome.push(`${label} ${(e as GatewayError).code}`);
          return null;
        },
      );
    const waiting = [wait("a", "a1"), wait("b", "b1"), wait("a", "a2")];
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    // Arrives later with most of its budget spent elsewhere: due before the others.
    waiting.push(wait("b", "b2", 800));
    expect([p.queued("a"), p.queued("b"), clock.pending]).toEqual([2, 2, 1]);
    await clock.advance(199);
    expect(outcome).toEqual([]);
    await clock.advance(1);
    expect(outcome).toEqual(["b2 proxy_overloaded"]);
    // A freed slot goes to the oldest waiter of that account.
    held[0]!.release();
    await Promise.resolve();
    await Promise.resolve();
    expect(outcome).toEqual(["b2 proxy_overloaded", "a1 served"]);
    await clock.advance(699);
    expect(outcome).toHaveLength(2);
    await clock.advance(1);
    expect(outcome.slice(2).sort()).toEqual(["a2 proxy_overloaded", "b1 proxy_overloaded"]);
    // Nobody waits: no timer is left behind.
    expect([p.queued("a"), p.queued("b"), clock.pending]).toEqual([0, 0, 0]);
    for (const l of await Promise.all(waiting)) l?.release();
    held[1]!.release();
    expect(p.stats()).toEqual({});
  });
});
