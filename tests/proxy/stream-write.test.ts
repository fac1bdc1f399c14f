/**
 * A streamed answer whose upstream bytes (and end) were read already goes out without waiting:
 * `ProxyStream.stepBytesNow` gives them at once, so the client body writes the answer, and ends,
 * before anything is awaited (one write with the response head). Bytes still to come are waited
 * for as before.
 */
import { describe, expect, test } from "bun:test";
import { firstEvent, type OpenStream } from "../../src/proxy/attempt.ts";
import type { ProxyContext } from "../../src/proxy/context.ts";
import { codexShaper } from "../../src/proxy/shapers.ts";
import { type FinishStatus, ProxyStream, type StepBytes } from "../../src/proxy/stream.ts";
import { UpstreamEvents } from "../../src/upstream/event-stream.ts";

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

/** A stream as the gateway opens it over `chunks` (the body ends after them unless `open`). */
async function opened(chunks: string[], more?: Promise<string>) {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      if (!more) c.close();
    },
    async pull(c) {
      if (!more) return;
      c.enqueue(enc.encode(await more));
      c.close();
    },
  });
  const events = new UpstreamEvents(body, 5000);
  const first = await firstEvent(events, new Headers(), new AbortController());
  if (first.kind !== "open") throw new Error("the attempt failed");
  const open = { ...first.open, account: { id: "a1" }, lease: { release() {} } } as unknown as OpenStream;
  const ctx = {
    deps: { settings: { streamIdleTimeoutSeconds: 5 }, clock: () => 0 },
    quota: { record() {} },
  } as unknown as ProxyContext;
  const finished: FinishStatus[] = [];
  const ps = new ProxyStream(ctx, open, codexShaper, (_state, status) => finished.push(status));
  return { ps, finished };
}

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
