import { describe, expect, test } from "bun:test";
import { GcPacer, gcTick } from "../../src/runtime/bun/gc-pacer.ts";
import { listen } from "../../src/runtime/bun/serve.ts";
import { loadSettings } from "../../src/settings/load.ts";
import { UpstreamEvents } from "../../src/upstream/event-stream.ts";

/**
 * A pacer on a hand-moved clock whose collections are counted (each takes `gcMs`) and run when the
 * test says; `server.pendingRequests` is set by the test.
 */
function pacer(step: number, minIntervalMs = 0, gcMs = 0) {
  let now = 1000;
  let collections = 0;
  const queued: (() => void)[] = [];
  const server = { pendingRequests: 0 };
  const p = new GcPacer({
    step,
    minIntervalMs,
    now: () => now,
    collect: () => {
      collections++;
      now += gcMs;
    },
    schedule: (run) => queued.push(run),
  });
  p.attach(server);
  return {
    server,
    /** `n` units of work, with `inFlight` requests in flight. */
    arrive(n: number, inFlight = server.pendingRequests) {
      server.pendingRequests = inFlight;
      for (let i = 0; i < n; i++) p.tick();
    },
    runQueued() {
      for (const run of queued.splice(0)) run();
    },
    queued: () => queued.length,
    collections: () => collections,
    advance(ms: number) {
      now += ms;
    },
  };
}

describe("GcPacer", () => {
  test("with as many requests in flight as the step, each step of work asks for one collection", () => {
    const g = pacer(100);
    g.arrive(99, 1000);
    expect(g.queued()).toBe(0);
    g.arrive(1);
    expect(g.queued()).toBe(1);
    // Not on the arriving request's own stack: only once the scheduled run comes.
    expect(g.collections()).toBe(0);
    g.arrive(150); // already asked: no second request meanwhile
    expect(g.queued()).toBe(1);
    g.runQueued();
    expect(g.collections()).toBe(1);
    // Counted again from the collection.
    g.arrive(99);
    expect(g.queued()).toBe(0);
    g.arrive(1);
    g.runQueued();
    expect(g.collections()).toBe(2);
  });

  test("fewer requests in flight than the step never ask, however much work is done", () => {
    const g = pacer(100);
    g.arrive(100_000, 99);
    expect(g.queued()).toBe(0);
    // Counting starts again when the count was found too low: 100 more arrivals at 100 in flight ask.
    g.arrive(50, 100);
    expect(g.queued()).toBe(0);
    g.arrive(50);
    expect(g.queued()).toBe(1);
  });

  test("at most one collection per minimum interval; the next unit of work asks once it has passed", () => {
    const g = pacer(10, 250, 40);
    g.arrive(10, 10);
    g.runQueued();
    expect(g.collections()).toBe(1);
    // Measured from the collection's end (it took 40 ms: 4 x 40 is under the minimum).
    g.advance(249);
    g.arrive(30);
    expect(g.queued()).toBe(0);
    g.advance(1);
    g.arrive(1);
    g.runQueued();
    expect(g.collections()).toBe(2);
  });

  test("after a long collection the next waits four times as long (at most a fifth of the time collecting)", () => {
    const g = pacer(10, 100, 200);
    g.arrive(10, 10);
    g.runQueued();
    g.advance(799);
    g.arrive(20);
    expect(g.queued()).toBe(0);
    g.advance(1);
    g.arrive(1);
    expect(g.queued()).toBe(1);
  });

  test("before a server is attached, nothing is asked", () => {
    const p = new GcPacer({
      step: 1,
      minIntervalMs: 0,
      collect: () => {},
      schedule: () => {
        throw new Error("asked");
      },
    });
    for (let i = 0; i < 10; i++) p.tick();
  });

  test("step 0 never asks", () => {
    const g = pacer(0);
    g.arrive(100_000, 100_000);
    expect(g.queued()).toBe(0);
  });
});

/** A server as `listen` starts it, with a pacer whose every unit of work calls `tick` (and nothing else). */
function listenCounting(tick: () => void) {
  const gc = new GcPacer({ step: 0, minIntervalMs: 0 });
  gc.tick = tick;
  return listen(() => new Response("ok"), {
    host: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 1024,
    connectionIdleTimeoutSeconds: 0,
    headersTimeoutSeconds: 10,
    maxPendingConnectionsPerAddress: 8,
    gc,
  });
}

test("the server counts each request and an upstream chunk read counts too, while it listens", async () => {
  let ticks = 0;
  const listening = listenCounting(() => void ticks++);
  const url = `http://127.0.0.1:${listening.port}/`;
  try {
    await Promise.all([fetch(url), fetch(url)].map(async (r) => (await r).text()));
    expect(ticks).toBe(2);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('event: a\ndata: {"type":"a"}\n\n'));
        c.close();
      },
    });
    const events = new UpstreamEvents(body, 5000);
    while ((await events.next()) !== null);
    // One chunk, then the end: two reads.
    expect(ticks).toBe(4);
  } finally {
    await listening.close(1000);
  }
  // Closed: the process's pacer is gone.
  gcTick();
  expect(ticks).toBe(4);
});

test("a server that closes leaves the process's pacer to a server that listened after it", async () => {
  const ticks = { first: 0, second: 0 };
  const listenWith = (name: keyof typeof ticks) => listenCounting(() => void ticks[name]++);
  const first = listenWith("first");
  const second = listenWith("second");
  let firstOpen = true;
  try {
    gcTick(); // an upstream chunk: the last server to listen has the process's pacer
    expect(ticks).toEqual({ first: 0, second: 1 });
    firstOpen = false;
    await first.close(1000);
    // The second still listens: its pacer still counts the chunks.
    gcTick();
    expect(ticks).toEqual({ first: 0, second: 2 });
  } finally {
    if (firstOpen) await first.close(1000);
    await second.close(1000);
  }
  gcTick();
  expect(ticks).toEqual({ first: 0, second: 2 });
});

test("the settings: a step and an interval; 0 turns the step off; a bad value names its variable", () => {
  const s = loadSettings({});
  expect(s.gcRequestStep).toBe(1000);
  expect(s.gcMinIntervalMs).toBe(100);
  expect(loadSettings({ CODEX_LB_GC_REQUEST_STEP: "0" }).gcRequestStep).toBe(0);
  expect(() => loadSettings({ CODEX_LB_GC_REQUEST_STEP: "-1" })).toThrow("CODEX_LB_GC_REQUEST_STEP");
  expect(() => loadSettings({ CODEX_LB_GC_MIN_INTERVAL_MS: "x" })).toThrow("CODEX_LB_GC_MIN_INTERVAL_MS");
});
