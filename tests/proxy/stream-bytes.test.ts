/**
 * The byte pass-through of the Codex endpoint (ProxyStream.stepBytes) sends exactly what the event
 * path (step) sends, for every way an upstream stream can be cut into chunks: events split anywhere
 * (inside multi-byte characters too), comments, data-only and multi-line events, CR line ends,
 * invalid UTF-8, error events, a last event without its blank line, a stream without a terminal.
 */
import { describe, expect, test } from "bun:test";
import { seededRandom } from "../../src/core/clock.ts";
import { firstEvent, type OpenStream, type UpstreamEventSource } from "../../src/proxy/attempt.ts";
import type { ProxyContext } from "../../src/proxy/context.ts";
import { codexShaper, responsesStreamShaper } from "../../src/proxy/shapers.ts";
import { ProxyStream, type Shaper, toReadableStream } from "../../src/proxy/stream.ts";
import { UpstreamEvents } from "../../src/upstream/event-stream.ts";
import { randomCuts } from "../support/cuts.ts";
import { clientParts, proxyStream } from "../support/proxy-stream.ts";

const enc = new TextEncoder();
const ev = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const delta = (d: string) => ev({ type: "response.output_text.delta", delta: d });

const STREAMS: Record<string, Uint8Array> = {
  plain: enc.encode(
    [
      ev({ type: "response.created", response: { id: "r1", created_at: 1 } }),
      ev({ type: "codex.rate_limits", rate_limits: { primary: { used_percent: 5, window_minutes: 300 } } }),
      delta("héllo 😀"),
      delta(" wörld"),
      ev({ type: "response.completed", response: { id: "r1", created_at: 1, usage: { output_tokens: 2 } } }),
    ].join(""),
  ),
  odd: enc.encode(
    [
      ": comment\n\n",
      ev({ type: "response.created", response: { id: "r2", created_at: 1 } }),
      `data: ${JSON.stringify({ type: "response.output_text.delta", delta: "x" })}\n\n`,
      'event: response.output_text.delta\ndata: {"a":\ndata: 1}\n\n',
      "\n\n",
      ": only a comment\n\n",
      delta("y"),
      "event: response.output_text.delta\n: inline comment\ndata: {}\n\n",
      ev({ type: "error", error: { code: "Server_Error", message: "boom" } }),
      delta("after"),
      `event: response.completed\ndata: ${JSON.stringify({ type: "response.completed", response: { id: "r2", created_at: 1 } })}`,
    ].join(""),
  ),
  crlf: enc.encode(
    [delta("a"), delta("b"), ev({ type: "response.completed", response: { id: "r3", created_at: 1 } })]
      .join("")
      .replace(/\n/g, "\r\n"),
  ),
  truncated: enc.encode(
    [ev({ type: "response.created", response: { id: "r4", created_at: 1 } }), delta("cut")].join(""),
  ),
  invalidUtf8: (() => {
    const a = enc.encode(delta("ok"));
    const bad = enc.encode(delta("XX"));
    bad[bad.indexOf(88)] = 0xff; // not UTF-8
    const end = enc.encode(ev({ type: "response.completed", response: { id: "r5", created_at: 1 } }));
    return new Uint8Array([...a, ...bad, ...end]);
  })(),
};

function cuts(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  let k = 0;
  while (i < data.length) {
    const n = sizes[k++ % sizes.length]!;
    out.push(data.slice(i, i + n));
    i += n;
  }
  return out;
}

async function run(
  chunks: readonly Uint8Array[],
  bytes: boolean,
  shaper: Shaper = codexShaper,
  /** A stream already made (`chunks` is then unused). */
  made?: ProxyStream,
): Promise<{ out: Uint8Array; raw: number; state: ProxyStream["state"]; quota: unknown[] }> {
  const quota: unknown[] = [];
  const ps = made ?? proxyStream(chunks, shaper, quota);
  const { parts, raw } = await clientParts(ps, bytes);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { out, raw, state: ps.state, quota };
}

/**
 * A stream as the gateway opens it: the attempt reads its first events (up to the first real one),
 * then the stream goes on from there. `replay`: the events source may put those events back as
 * bytes (UpstreamEvents does); without it they go out as the prelude, as the event path sends them.
 */
async function opened(
  chunks: readonly Uint8Array[],
  shaper: Shaper,
  replay: boolean,
  quota: unknown[],
): Promise<ProxyStream | null> {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
  const upstream = new UpstreamEvents(body, 5000);
  const events: UpstreamEventSource = replay
    ? upstream
    : {
        next: () => upstream.next(),
        cancel: (r) => upstream.cancel(r),
        nextBytes: () => upstream.nextBytes(),
      };
  const first = await firstEvent(events, new Headers(), new AbortController());
  if (first.kind !== "open") return null;
  const open = { ...first.open, account: { id: "a1" }, lease: { release() {} } } as unknown as OpenStream;
  const ctx = {
    deps: { settings: { streamIdleTimeoutSeconds: 5 }, clock: () => 1_700_000_000_000 },
    quota: { record: (...reading: unknown[]) => quota.push(reading) },
  } as unknown as ProxyContext;
  return new ProxyStream(ctx, open, shaper, () => {});
}

/** The client bytes of an opened stream (null: the attempt failed), and what the gateway read of it. */
async function runOpened(chunks: readonly Uint8Array[], shaper: Shaper, bytes: boolean) {
  const quota: unknown[] = [];
  const ps = await opened(chunks, shaper, bytes, quota);
  if (ps === null) return null;
  const body = bytes
    ? new Uint8Array(await new Response(toReadableStream(ps)).arrayBuffer())
    : (await run([], false, shaper, ps)).out;
  const state = JSON.stringify(ps.state).replace(/resp_[0-9a-f]{32}/g, "resp_X");
  return {
    body: Buffer.from(body)
      .toString("latin1")
      .replace(/resp_[0-9a-f]{32}/g, "resp_X"),
    state,
    quota,
  };
}

describe("byte pass-through", () => {
  for (const [name, data] of Object.entries(STREAMS)) {
    test(`${name}: the same bytes as the event path, however the stream is cut`, async () => {
      for (const sizes of [[data.length], [1], [2, 3], [7, 64], [5, 1, 200], [13, 17, 3000]]) {
        const chunks = cuts(data, sizes);
        const viaEvents = await run(chunks, false);
        const viaBytes = await run(chunks, true);
        expect({ sizes, text: new TextDecoder().decode(viaBytes.out) }).toEqual({
          sizes,
          text: new TextDecoder().decode(viaEvents.out),
        });
        // Byte for byte, not only as text (invalid UTF-8 must not pass where the event path replaced it).
        expect(Buffer.compare(viaBytes.out, viaEvents.out)).toBe(0);
        // And the gateway read the same of it (id, usage, how it ended, rate limits).
        expect({ sizes, state: viaBytes.state, quota: viaBytes.quota }).toEqual({
          sizes,
          state: viaEvents.state,
          quota: viaEvents.quota,
        });
      }
    });
  }

  test("a plain stream in whole-event chunks goes out as raw bytes", async () => {
    const text = new TextDecoder().decode(STREAMS.plain);
    const chunks = text.split(/(?<=\n\n)/).map((s) => enc.encode(s));
    const r = await run(chunks, true);
    expect(r.raw).toBeGreaterThan(0);
    expect(new TextDecoder().decode(r.out)).toBe(text);
  });

  test("a chunk that sends the client nothing (a comment alone) does not stall the client body", async () => {
    const text = new TextDecoder().decode(STREAMS.odd);
    const chunks = text.split(/(?<=\n\n)/).map((s) => enc.encode(s));
    const viaEvents = await run(chunks, false);
    for (const keepaliveMs of [0, 60_000]) {
      const body = await new Response(toReadableStream(proxyStream(chunks), keepaliveMs)).arrayBuffer();
      expect(Buffer.compare(new Uint8Array(body), viaEvents.out)).toBe(0);
    }
  });

  test("random streams, randomly cut: the client body carries the event path's bytes (Codex and /v1/responses)", async () => {
    const next = seededRandom(3).next;
    const pieces = [
      delta("a"),
      delta("é😀"),
      ev({ type: "response.created", response: { id: "r9", created_at: 1 } }),
      ev({ type: "codex.rate_limits", rate_limits: { primary: { used_percent: 1 } } }),
      ev({ type: "error", error: { code: "X", message: "m" } }),
      ": keepalive\n\n",
      ev({ type: "codex.other", x: 1 }),
      ev({ type: "response.output_item.done", output_index: 0, item: { id: "m", type: "message" } }),
      "\n",
      `data: ${JSON.stringify({ type: "response.output_text.delta", delta: "d" })}\n\n`,
      "event: response.output_text.delta\ndata: {}\ndata: {}\n\n",
      "event: \ndata: {}\n\n",
    ];
    for (let k = 0; k < 150; k++) {
      const parts: string[] = [];
      for (let i = 0, n = 1 + Math.floor(next() * 12); i < n; i++)
        parts.push(pieces[Math.floor(next() * pieces.length)]!);
      if (next() < 0.5) parts.push(ev({ type: "response.completed", response: { id: "r9", created_at: 1 } }));
      const data = enc.encode(parts.join(""));
      const chunks = randomCuts(data, next, 40);
      // Byte for byte, but for the id a response.failed makes up when the upstream gave none.
      const latin1 = (b: Uint8Array) =>
        Buffer.from(b)
          .toString("latin1")
          .replace(/resp_[0-9a-f]{32}/g, "resp_X");
      for (const shaper of [() => codexShaper, responsesStreamShaper]) {
        const viaEvents = await run(chunks, false, shaper());
        const client = toReadableStream(proxyStream(chunks, shaper()));
        const body = new Uint8Array(await new Response(client).arrayBuffer());
        expect({ k, body: latin1(body) }).toEqual({ k, body: latin1(viaEvents.out) });
        const viaBytes = await run(chunks, true, shaper());
        const read = (r: typeof viaBytes) => JSON.stringify(r.state).replace(/resp_[0-9a-f]{32}/g, "resp_X");
        expect({ k, read: read(viaBytes), quota: viaBytes.quota }).toEqual({
          k,
          read: read(viaEvents),
          quota: viaEvents.quota,
        });
      }
    }
  });

  test("the events the attempt read first go out with the rest of their chunk as bytes: the event path's bytes and readings", async () => {
    const next = seededRandom(5).next;
    const streams = Object.values(STREAMS).map((d) => new TextDecoder().decode(d));
    const head = [
      ev({ type: "response.created", response: { id: "r7", created_at: 1 } }),
      ev({ type: "response.in_progress", response: { id: "r7", created_at: 1 } }),
      ev({ type: "codex.rate_limits", rate_limits: { primary: { used_percent: 7 } } }),
      ": comment\n\n",
    ];
    for (let k = 0; k < 40; k++) {
      const parts: string[] = [];
      for (let i = 0, n = Math.floor(next() * 5); i < n; i++)
        parts.push(head[Math.floor(next() * head.length)]!);
      parts.push(
        delta("first"),
        delta("é"),
        ev({ type: "response.completed", response: { id: "r7", created_at: 1 } }),
      );
      streams.push(parts.join(""));
    }
    let replayed = 0;
    for (const [i, text] of streams.entries()) {
      const data = enc.encode(text);
      for (const sizes of [[data.length], [1], [7, 64], [13, 17, 3000], [150, 20]]) {
        const chunks = cuts(data, sizes);
        for (const shaper of [() => codexShaper, responsesStreamShaper]) {
          const viaEvents = await runOpened(chunks, shaper(), false);
          const viaBytes = await runOpened(chunks, shaper(), true);
          expect({ i, sizes, ...viaBytes }).toEqual({ i, sizes, ...viaEvents });
        }
        const probe = await opened(chunks, codexShaper, true, []);
        // The whole stream in one chunk: the attempt's events were put back (not sent first as text).
        if (sizes[0] === data.length && probe && typeof (await probe.stepBytes()) !== "string") replayed++;
      }
    }
    expect(replayed).toBeGreaterThan(40);
  });

  test("first events completed across chunks (a real backend's large response.created) are put back as bytes too", async () => {
    const text = [
      ev({ type: "response.created", response: { id: "r8", created_at: 1, instructions: "x".repeat(300) } }),
      ev({
        type: "response.in_progress",
        response: { id: "r8", created_at: 1, instructions: "x".repeat(300) },
      }),
      ev({ type: "codex.rate_limits", rate_limits: { primary: { used_percent: 7 } } }),
      delta("first"),
      delta("é"),
      ev({ type: "response.completed", response: { id: "r8", created_at: 1, usage: { output_tokens: 2 } } }),
    ].join("");
    const data = enc.encode(text);
    const firstEnd = text.indexOf("\n\n") + 2;
    // Cut anywhere inside the first event (the rest of the stream comes in the next chunk, whole).
    // A first chunk of whole events only is another case: the events come from two reads, and
    // those the attempt read from the first one go out re-encoded, as before.
    for (let cut = 1; cut < firstEnd; cut++) {
      const chunks = [data.subarray(0, cut), data.subarray(cut)];
      for (const shaper of [() => codexShaper, responsesStreamShaper]) {
        const viaEvents = await runOpened(chunks, shaper(), false);
        const viaBytes = await runOpened(chunks, shaper(), true);
        expect({ cut, ...viaBytes }).toEqual({ cut, ...viaEvents });
      }
      const probe = await opened(chunks, codexShaper, true, []);
      const out = await probe!.stepBytes();
      // Not re-encoded from the events first: the upstream's bytes, from the first event on.
      expect({ cut, text: typeof out === "string" ? "text" : "bytes" }).toEqual({ cut, text: "bytes" });
      const bytes = Buffer.concat(Array.isArray(out) ? out : [out as Uint8Array]);
      expect(Buffer.compare(bytes, data.subarray(0, bytes.length))).toBe(0);
    }
  });
});
