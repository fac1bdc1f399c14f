/**
 * `streamedBody`: the client body is made once the steps at hand are taken. An answer whose end is
 * at hand while its settle commits gets its body (and so its response head) after the commit, all
 * in one write; an answer still streaming gets its body at once.
 */
import { expect, test } from "bun:test";
import { streamedBody } from "../../src/proxy/stream.ts";
import { opened } from "../support/proxy-stream.ts";

const frame = (e: Record<string, unknown>) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const head =
  frame({ type: "response.created", response: { id: "r1" } }) +
  frame({ type: "response.output_text.delta", delta: "hi" });
const tail = frame({
  type: "response.completed",
  response: { id: "r1", usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } },
});

/** Whether `p` has settled after the microtasks and one turn of the event loop. */
async function settledSoon(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await Bun.sleep(0);
  return done;
}

async function all(body: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(body).text();
}

test("an answer at hand whose settle is committing: the body is made after the commit, whole", async () => {
  let commit!: () => void;
  const committing = new Promise<void>((r) => {
    commit = r;
  });
  const { ps } = await opened([head + tail], undefined, () => committing);
  const body = streamedBody(ps);
  // Not before the commit: the client must not see the end (nor, now, the head) before it.
  expect(await settledSoon(body)).toBe(false);
  commit();
  expect(await all(await body)).toBe(head + tail);
  expect(ps.state.usage?.totalTokens).toBe(3);
});

test("an answer at hand committed at once: the body is made at once", async () => {
  const { ps } = await opened([head + tail], undefined, () => undefined);
  const body = streamedBody(ps);
  expect(await settledSoon(body)).toBe(true);
  expect(await all(await body)).toBe(head + tail);
});

test("an answer still streaming gets its body at once; the rest follows when it comes", async () => {
  let send!: (s: string) => void;
  const more = new Promise<string>((r) => {
    send = r;
  });
  let settles = 0;
  const { ps } = await opened([head], more, () => {
    settles++;
    return undefined;
  });
  const body = streamedBody(ps);
  // Made without waiting for the upstream's next bytes.
  expect(await settledSoon(body)).toBe(true);
  const reader = (await body).getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  expect(first).toBe(head);
  send(tail);
  let rest = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  expect(rest).toBe(tail);
  expect(settles).toBe(1);
});
