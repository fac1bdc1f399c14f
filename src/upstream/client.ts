/**
 * The upstream HTTP client: one `fetch` per attempt with a deadline for the response headers and an
 * abort signal tied to the client. Transport failures come back as values, never as throws, so
 * the attempt loop can classify them.
 *
 * @module
 */
import { type Clock, systemClock } from "../core/clock.ts";
import type { FailureDetails } from "../core/failures.ts";
import { failureFromTransport } from "../core/failures.ts";
import { http1Fetch, http1Serves } from "../runtime/bun/http1-client.ts";
import type { upstreamClients } from "../settings/schema.ts";

/**
 * A request body for {@link sendUpstream}: text, bytes, or a function that makes the bytes when
 * `fetch` is called, and whose bytes need to live only until then (`fetch` copies a byte body
 * when called: the Fetch Standard's "extract a body"), so they may sit in a reused buffer.
 */
export type UpstreamBody = string | Uint8Array | (() => Uint8Array);

export type UpstreamResult =
  | { readonly ok: true; readonly response: Response; readonly controller: AbortController }
  | { readonly ok: false; readonly failure: FailureDetails };

/**
 * Which client carries upstream requests: `auto` (the gateway's own HTTP/1.1 client on the main
 * thread, or `fetch` where a proxy is configured) or `fetch` (Bun's, on its HTTP client thread).
 */
export type UpstreamClientKind = (typeof upstreamClients)[number];

/**
 * Sends a request upstream. The returned controller aborts the call later (client gone, idle
 * stream); `signal` (the client's) aborts it too. `connectTimeoutMs` bounds the wait for headers.
 */
export async function sendUpstream(
  url: string,
  init: {
    method: string;
    headers: Headers;
    body?: UpstreamBody;
    signal?: AbortSignal;
    connectTimeoutMs: number;
    /** The gateway's timers (the header deadline runs on its clock). */
    timers?: Pick<Clock, "setTimeout" | "clearTimeout">;
    /** `CODEX_LB_UPSTREAM_CLIENT` (default `auto`). */
    client?: UpstreamClientKind;
  },
): Promise<UpstreamResult> {
  const timers = init.timers ?? systemClock;
  // Made here, in the same turn as the call that copies it (`fetch` always; the own client what it
  // does not write at once), and before the try: a failure to make it is the gateway's own, never
  // an upstream transport error to fail over on.
  const remakeBody = typeof init.body === "function" ? init.body : undefined;
  const body = typeof init.body === "function" ? init.body() : init.body;
  const controller = new AbortController();
  const signal = init.signal;
  const onAbort = signal ? follow(signal, controller) : undefined;
  let timedOut = false;
  const timer = timers.setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException("upstream did not answer in time", "TimeoutError"));
  }, init.connectTimeoutMs);
  try {
    const response =
      init.client !== "fetch" && http1Serves(url)
        ? await http1Fetch(url, {
            method: init.method,
            headers: init.headers,
            body,
            // A body function's bytes are valid only now: the client makes them again for a retry.
            remakeBody,
            signal: controller.signal,
          })
        : await fetch(url, {
            method: init.method,
            headers: init.headers,
            body,
            signal: controller.signal,
            // Streams must not wait for a compression buffer to fill.
            decompress: true,
            // An upstream redirect is the answer: account tokens never follow it to another origin.
            redirect: "manual",
          } as RequestInit);
    return { ok: true, response, controller };
  } catch (e) {
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    const err =
      timedOut && !(e instanceof DOMException && e.name === "TimeoutError")
        ? new DOMException("upstream did not answer in time", "TimeoutError")
        : e;
    return { ok: false, failure: failureFromTransport(err) };
  } finally {
    timers.clearTimeout(timer);
  }
}

/**
 * Aborts `controller` when `signal` aborts; returns the listener. A function of its own: the
 * listener stays on the client's signal while the stream runs, and a closure made in
 * `sendUpstream` (async) would keep its `init` and with it the body sent (a long Codex history).
 */
function follow(signal: AbortSignal, controller: AbortController): () => void {
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener("abort", onAbort, { once: true });
  return onAbort;
}
