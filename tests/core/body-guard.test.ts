/**
 * The body guard's deadlines run on the injected clock's timers: every body being read, whether the
 * proxy pipeline reads it (`readText`) or the framework reads the guarded wrapper (`guard`), is in
 * one deadline queue served by one timer, and no timer is left once nothing is being read. Its
 * limit and deadline hold on both ways a guarded body is read (in one go when its declared length
 * frames it, else chunk by chunk). The end-to-end behaviour over sockets is in
 * tests/security/slow-body.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { BodyGuard, framedBy } from "../../src/core/body-guard.ts";
import { FakeClock } from "../../src/core/clock.ts";
import type { GatewayError } from "../../src/core/errors.ts";

/** A body whose first chunk arrives and then nothing more (a client that stopped sending). */
function stalled(first = "{"): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(first));
    },
  });
}

function streamOf(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

const post = (body: ReadableStream<Uint8Array>, headers: Record<string, string>) =>
  new Request("http://localhost/v1/responses", {
    method: "POST",
    body,
    headers,
    duplex: "half",
  } as RequestInit);

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => (e as GatewayError).code ?? String(e),
  );

describe("body deadlines on the injected clock", () => {
  test("one timer serves the pipeline's reads and the framework's guarded bodies; none is left after", async () => {
    const clock = new FakeClock();
    const guard = new BodyGuard({ maxBytes: 1000, timeoutMs: 20, maxPendingPerAddress: 10, timers: clock });
    let done = 0;
    const wrapped = guard.guard(stalled(), () => done++);
    const throughWrapper = codeOf(new Response(wrapped.stream).text());
    const direct = codeOf(guard.readText(post(stalled(), { "content-length": "10" }), performance.now()));
    const inOneGo = guard.guard(stalled(), () => done++);
    const whole = codeOf(inOneGo.text(new Headers({ "content-length": "10" })));
    expect(clock.pending).toBe(1);
    // Past the deadline in real time (the queue measures on the monotonic clock), then the timer fires.
    await Bun.sleep(30);
    await clock.advance(30);
    expect(await throughWrapper).toBe("request_timeout");
    expect(await direct).toBe("request_timeout");
    expect(await whole).toBe("request_timeout");
    expect(done).toBe(2);
    expect(clock.pending).toBe(0);
  });

  test("a read that ends in time leaves no timer; a later one arms it again", async () => {
    const clock = new FakeClock();
    const guard = new BodyGuard({
      maxBytes: 1000,
      timeoutMs: 60_000,
      maxPendingPerAddress: 10,
      timers: clock,
    });
    expect(
      await guard.readText(post(streamOf('{"a":1}'), { "content-length": "7" }), performance.now()),
    ).toBe('{"a":1}');
    expect(clock.pending).toBe(0);
    let done = 0;
    const g = guard.guard(streamOf('{"b":2}'), () => done++);
    expect(clock.pending).toBe(1);
    expect(await new Response(g.stream).text()).toBe('{"b":2}');
    expect(done).toBe(1);
    expect(clock.pending).toBe(0);
  });
});

describe("a guarded body, read either way", () => {
  const guard = () =>
    new BodyGuard({ maxBytes: 16, timeoutMs: 60_000, maxPendingPerAddress: 10, timers: new FakeClock() });

  test("framed by its declared length: read in one go; its slot is released", async () => {
    let done = 0;
    const g = guard().guard(streamOf('{"x":"hi"}'), () => done++);
    expect(await g.text(new Headers({ "content-length": "10" }))).toBe('{"x":"hi"}');
    expect(done).toBe(1);
  });

  test("chunked (no declared length) over the limit: 413 through the wrapper", async () => {
    let done = 0;
    const g = guard().guard(streamOf("x".repeat(40)), () => done++);
    expect(await codeOf(g.text(new Headers()))).toBe("payload_too_large");
    expect(done).toBe(1);
  });

  test("the framing rule: a sane length within the limit and no Transfer-Encoding", () => {
    expect(framedBy(new Headers({ "content-length": "16" }), 16)).toBe(true);
    expect(framedBy(new Headers({ "content-length": "17" }), 16)).toBe(false);
    expect(framedBy(new Headers({ "content-length": "1e3" }), 16)).toBe(false);
    expect(framedBy(new Headers(), 16)).toBe(false);
    expect(framedBy(new Headers({ "content-length": "4", "transfer-encoding": "chunked" }), 16)).toBe(false);
  });
});
