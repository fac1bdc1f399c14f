/**
 * A streamed answer whose upstream bytes (and end) were read already goes out without waiting:
 * `ProxyStream.stepBytesNow` gives them at once, so the client body writes the answer, and ends,
 * before anything is awaited (one write with the response head). Bytes still to come are waited
 * for as before.
 */
import { describe, expect, test } from "bun:test";
import type { Clock, TimerHandle } from "../../src/core/clock.ts";
import { type ProxyStream, type StepBytes, toReadableStream } from "../../src/proxy/stream.ts";
import { opened, openedOver } from "../support/proxy-stream.ts";

const enc = new TextEncoder();
const frame = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const head = [
  frame({ type: "response.created", response: { id: "r1" } }),
  frame({ type: "response.in_progress", response: { id: "r1" } }),
  frame({ type: "response.output_text.delta", delta: "hi" }),
].join("");
const tail = frame({
  type: "response.completed",
  response: { id: "r1", usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } },
});

const text = (out: StepBytes | undefined): string => {
  if (out === null || out === undefined) throw new Error(`no bytes: ${out}`);
  if (typeof out === "string") return out;
  return (Array.isArray(out) ? out : [out]).map((b) => new TextDecoder().decode(b)).join("");
};

describe("bytes at hand go out without waiting", () => {
  test("an answer that arrived whole, and its end, are at hand once the stream is opened", async () => {
    const { ps, finished } = await opened([head + tail]);
    // The read past the answer started when the stream was opened; its end is known by the time
    // the client body starts (a later turn).
    await Bun.sleep(0);
    expect(text(ps.stepBytesNow())).toBe(head + tail);
    expect(ps.stepBytesNow()).toBeNull();
    expect(finished).toEqual(["success"]);
    expect(ps.state.usage?.totalTokens).toBe(3);
  });

  test("bytes still to come are waited for (undefined now), then come as before", async () => {
    let send!: (s: string) => void;
    const more = new Promise<string>((r) => {
      send = r;
    });
    const { ps, finished } = await opened([head], more);
    await Bun.sleep(0);
    expect(text(ps.stepBytesNow())).toBe(head);
    expect(ps.stepBytesNow()).toBeUndefined();
    const next = ps.stepBytes();
    send(tail);
    expect(text(await next)).toBe(tail);
    expect(await ps.stepBytes()).toBeNull();
    expect(finished).toEqual(["success"]);
  });
});

/** The client text of a stream to its end: each step's bytes taken at once when at hand, else awaited. */
async function clientText(ps: ProxyStream): Promise<string> {
  let all = "";
  for (;;) {
    const out = ps.stepBytesNow() ?? (await ps.stepBytes());
    if (out === null) return all;
    all += text(out);
  }
}

describe("an upstream that ends without a terminal event", () => {
  test("the failure event goes out and the stream is over at once (no wait for a step that has nothing)", async () => {
    const { ps, finished } = await opened([head]);
    await Bun.sleep(0);
    expect(text(ps.stepBytesNow())).toBe(head);
    const failure = text(ps.stepBytesNow());
    expect(failure).toStartWith("event: response.failed\n");
    expect(failure).toContain('"code":"stream_incomplete"');
    // Over now, not undefined (which would make the client body wait for the next step).
    expect(ps.stepBytesNow()).toBeNull();
    expect(finished).toEqual(["error"]);
    // Once over, it stays over (abort() after the end changes nothing).
    ps.abort();
    expect(ps.stepBytesNow()).toBeNull();
    expect(finished).toEqual(["error"]);
  });

  test("the client body writes it and its end without arming the keepalive timer", async () => {
    const { ps, finished } = await opened([head]);
    await Bun.sleep(0);
    const armed: number[] = [];
    const timers: Pick<Clock, "now" | "setTimeout" | "clearTimeout"> = {
      now: () => 0,
      setTimeout: (_fn, ms) => {
        armed.push(ms);
        return { __timer: true } as unknown as TimerHandle;
      },
      clearTimeout: () => {},
    };
    const body = await new Response(toReadableStream(ps, 15_000, timers)).text();
    expect(body).toStartWith(head + "event: response.failed\n");
    expect(body).toContain('"message":"Upstream stream ended before a terminal event"');
    expect(armed).toEqual([]);
    expect(finished).toEqual(["error"]);
  });
});

describe("an upstream body that fails with undefined", () => {
  const delta = frame({ type: "response.output_text.delta", delta: "more" });
  /** A body: `head`, then each of `then` on later reads, then a failure with undefined. */
  const failing = (then: string[]) => {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode(head));
      },
      pull(c) {
        if (i < then.length) c.enqueue(enc.encode(then[i++]!));
        else c.error(undefined);
      },
    });
  };

  test("gives the same failure message whether the read that failed was started ahead or not", async () => {
    // Failing on the read started ahead (when the stream was opened).
    const early = await openedOver(failing([]));
    await Bun.sleep(0);
    const viaAhead = await clientText(early.ps);
    // Failing on a later read, made when the client body asked for the next bytes.
    const late = await openedOver(failing([delta]));
    await Bun.sleep(0);
    const viaRead = await clientText(late.ps);
    const message = '"message":"Upstream stream broke: undefined"';
    expect(viaAhead).toStartWith(head + "event: response.failed\n");
    expect(viaAhead).toContain(message);
    expect(viaRead).toStartWith(head + delta + "event: response.failed\n");
    expect(viaRead).toContain(message);
    expect([early.finished, late.finished]).toEqual([["error"], ["error"]]);
  });
});
