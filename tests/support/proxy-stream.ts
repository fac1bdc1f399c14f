/**
 * A `ProxyStream` over fixed upstream chunks, as the gateway would open it (no attempt, no lease,
 * no store), and the loop that reads its client output: for the stream-path unit tests.
 *
 * @module
 */
import { firstEvent, type OpenStream } from "../../src/proxy/attempt.ts";
import type { ProxyContext } from "../../src/proxy/context.ts";
import { codexShaper } from "../../src/proxy/shapers.ts";
import { type FinishStatus, ProxyStream, type Shaper } from "../../src/proxy/stream.ts";
import { UpstreamEvents } from "../../src/upstream/event-stream.ts";

const enc = new TextEncoder();

/** A stream of `chunks` through `shaper`; the live-quota readings it records go to `quota`. */
export function proxyStream(
  chunks: readonly Uint8Array[],
  shaper: Shaper = codexShaper,
  quota: unknown[] = [],
): ProxyStream {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
  const open = {
    account: { id: "a1" },
    events: new UpstreamEvents(body, 5000),
    prelude: [],
    headers: new Headers(),
    controller: new AbortController(),
    lease: { release() {} },
  } as unknown as OpenStream;
  const ctx = {
    deps: { settings: { streamIdleTimeoutSeconds: 5 }, clock: () => 1_700_000_000_000 },
    quota: { record: (...reading: unknown[]) => quota.push(reading) },
  } as unknown as ProxyContext;
  return new ProxyStream(ctx, open, shaper, () => {});
}

/**
 * Everything `ps` sends the client, in order: by `stepBytes` (`bytes`) or by `step`; `raw` counts
 * the steps that gave bytes rather than text.
 */
export async function clientParts(
  ps: ProxyStream,
  bytes: boolean,
): Promise<{ parts: Uint8Array[]; raw: number }> {
  const parts: Uint8Array[] = [];
  let raw = 0;
  for (;;) {
    const x = bytes ? await ps.stepBytes() : await ps.step();
    if (x === null) break;
    if (typeof x === "string") parts.push(enc.encode(x));
    else {
      raw++;
      if (Array.isArray(x)) parts.push(...x);
      else parts.push(x);
    }
  }
  return { parts, raw };
}

/**
 * A stream as the gateway opens it (the attempt's `firstEvent` read its first events) over
 * `chunks`; the body ends after them unless `more` gives one more. `settle` is what the stream's
 * end waits for (the request's settle; a promise while it commits). `finished` records how it ended.
 */
export async function opened(
  chunks: string[],
  more?: Promise<string>,
  settle?: () => Promise<unknown> | undefined,
): Promise<{ ps: ProxyStream; finished: FinishStatus[] }> {
  return openedOver(
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const ch of chunks) c.enqueue(enc.encode(ch));
        if (!more) c.close();
      },
      async pull(c) {
        if (!more) return;
        c.enqueue(enc.encode(await more));
        c.close();
      },
    }),
    settle,
  );
}

/** A stream as the gateway opens it over the upstream body `body` (see {@link opened}). */
export async function openedOver(
  body: ReadableStream<Uint8Array>,
  settle?: () => Promise<unknown> | undefined,
): Promise<{ ps: ProxyStream; finished: FinishStatus[] }> {
  const events = new UpstreamEvents(body, 5000);
  const first = await firstEvent(events, new Headers(), new AbortController());
  if (first.kind !== "open") throw new Error("the attempt failed");
  const open = { ...first.open, account: { id: "a1" }, lease: { release() {} } } as unknown as OpenStream;
  const ctx = {
    deps: { settings: { streamIdleTimeoutSeconds: 5 }, clock: () => 0 },
    quota: { record() {} },
  } as unknown as ProxyContext;
  const finished: FinishStatus[] = [];
  const ps = new ProxyStream(ctx, open, codexShaper, (_state, status) => {
    finished.push(status);
    return settle?.();
  });
  return { ps, finished };
}
