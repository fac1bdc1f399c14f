import { describe, expect, test } from "bun:test";
import type { OpenStream } from "../../src/proxy/attempt.ts";
import type { ProxyContext } from "../../src/proxy/context.ts";
import { codexShaper } from "../../src/proxy/shapers.ts";
import { drain, ProxyStream } from "../../src/proxy/stream.ts";
import { UpstreamEvents } from "../../src/upstream/event-stream.ts";

const frame = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;

function openStream(text: string, close = true) {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      if (close) c.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  const controller = new AbortController();
  let released = 0;
  const open = {
    account: { id: "a1" },
    events: new UpstreamEvents(body, 5000),
    prelude: [],
    headers: new Headers(),
    controller,
    lease: { release: () => released++ },
  } as unknown as OpenStream;
  const ctx = {
    deps: { settings: { streamIdleTimeoutSeconds: 5 }, clock: () => 0 },
    quota: { record() {} },
  } as unknown as ProxyContext;
  return { open, ctx, controller, cancelled: () => cancelled, released: () => released };
}

const completed = [
  frame({ type: "response.created", response: { id: "r1" } }),
  frame({ type: "response.output_text.delta", delta: "hi" }),
  frame({ type: "response.completed", response: { id: "r1", usage: { input_tokens: 1, output_tokens: 2 } } }),
].join("");

describe("ProxyStream end", () => {
  test("a stream the upstream finished by itself is neither cancelled nor aborted (connection reusable)", async () => {
    const s = openStream(completed);
    let finished = "";
    const ps = new ProxyStream(s.ctx, s.open, codexShaper, (_state, status) => {
      finished = status;
    });
    await drain(ps);
    expect(finished).toBe("success");
    expect(s.controller.signal.aborted).toBe(false);
    expect(s.cancelled()).toBe(false);
    expect(s.released()).toBe(1);
    expect(ps.state.usage?.outputTokens).toBe(2);
  });

  test("a client that goes away mid-stream still aborts the upstream call", async () => {
    const s = openStream(frame({ type: "response.created", response: { id: "r2" } }), false);
    let finished = "";
    const ps = new ProxyStream(s.ctx, s.open, codexShaper, (_state, status) => {
      finished = status;
    });
    let first = "";
    while (first === "") first = (await ps.step()) ?? "end";
    expect(first).toContain("response.created");
    ps.abort();
    expect(finished).toBe("cancelled");
    expect(s.controller.signal.aborted).toBe(true);
    expect(s.released()).toBe(1);
  });
});
