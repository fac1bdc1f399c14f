/**
 * Guards on reading a request body, applied to every request that has one before the app sees it:
 * - a size limit that also holds for chunked bodies (no Content-Length): past
 *   `CODEX_LB_MAX_BODY_BYTES` the read fails with 413 `payload_too_large`;
 * - a deadline: the whole body must arrive within `CODEX_LB_BODY_TIMEOUT_SECONDS` of the headers,
 *   else 408 `request_timeout` — a client trickling a body cannot hold a connection for ever;
 * - a per-address cap on requests that are still unauthenticated (admission not passed with a key
 *   or a session yet, or a public route such as login) and still receiving their body:
 *   `CODEX_LB_MAX_UNAUTHENTICATED_PER_ADDRESS`; past it the request is answered 429 at once and the
 *   connection closed, so a flood from one address cannot exhaust file descriptors.
 * (Request headers have their own deadline in the server: Bun closes a connection whose headers are
 * not complete about 10 seconds after it opened. Answers to unauthenticated requests close their
 * connection, see `closingConnection` in app.ts.)
 *
 * Two ways to apply them: {@link BodyGuard.guard} wraps a body stream (what the web framework reads),
 * {@link BodyGuard.readText} reads a body whose length is declared natively (the proxy pipeline's
 * way: no stream per request). Both keep their deadlines in one queue served by one timer on the
 * injected clock (a FakeClock's in tests), and both read a body in one go only when its declared
 * length frames it ({@link framedBy}).
 *
 * Runtime-neutral: Web streams and the injected timers only.
 *
 * @module
 */
import type { Clock, TimerHandle } from "./clock.ts";
import { GatewayError } from "./errors.ts";

export interface BodyGuardOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly maxPendingPerAddress: number;
  /** The timers the body deadlines run on: the gateway's clock (a FakeClock in tests). */
  readonly timers: Pick<Clock, "setTimeout" | "clearTimeout">;
}

/** One guarded request's hold on its address's slot; released once (idempotent). */
export interface BodySlot {
  release(): void;
}

/** A body being read (by {@link BodyGuard.readText} or through {@link BodyGuard.guard}), until its deadline. */
interface PendingRead {
  readonly deadline: number;
  done: boolean;
  fail(e: GatewayError): void;
}

export class BodyGuard {
  readonly #pending = new Map<string, number>();
  /**
   * Reads in progress, in the order they began: every deadline is a start plus the same timeout, so
   * this is deadline order but for a read that began later than its start (after admission, or a
   * guard call): it fails with the read queued before it, late by at most that gap. One timer, for
   * the first live one, serves them all.
   */
  #reads: PendingRead[] = [];
  #readsHead = 0;
  #readsLive = 0;
  #readsTimer: TimerHandle | null = null;

  constructor(private readonly opts: BodyGuardOptions) {}

  /** Requests from `address` holding a slot now. */
  pending(address: string): number {
    return this.#pending.get(address) ?? 0;
  }

  /**
   * Takes a slot for `address` or throws 429 when the address holds too many. The caller releases
   * it when the request is authenticated, its body is read, or its answer is ready.
   */
  take(address: string): BodySlot {
    const n = this.pending(address);
    if (n >= this.opts.maxPendingPerAddress) {
      throw new GatewayError(
        "too_many_pending_requests",
        "Too many unauthenticated requests from this address are still sending their body",
        {},
        { "retry-after": "1", connection: "close" },
      );
    }
    this.#pending.set(address, n + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        const left = this.pending(address) - 1;
        if (left <= 0) this.#pending.delete(address);
        else this.#pending.set(address, left);
      },
    };
  }

  /**
   * The body of `request` as text, read natively when its length is declared (the declared length
   * was checked against the limit at admission), else through {@link guard}. The deadline runs from
   * `startedAt` (`performance.now()` when the request arrived). Errors are the guard's: 413, 408.
   */
  async readText(request: Request, startedAt: number): Promise<string> {
    // Only a declared length within the limit frames the body (a chunked one is counted as it comes).
    if (!framedBy(request.headers, this.opts.maxBytes)) {
      const body = request.body;
      if (body === null) return "";
      return new Response(this.guard(body, () => {}).stream).text();
    }
    // Framed: read natively without `request.body` (its getter makes a stream object per request);
    // a request without a body reads as "" this way too.
    const text = request.text();
    let entry: PendingRead | null = null;
    const timedOut = new Promise<never>((_, reject) => {
      entry = { deadline: startedAt + this.opts.timeoutMs, done: false, fail: reject };
    });
    this.#track(entry!);
    try {
      return await Promise.race([text, timedOut]);
    } finally {
      this.#untrack(entry!);
      // A body given up on at its deadline still settles (the connection closes): nobody awaits it.
      text.catch(() => {});
    }
  }

  #track(entry: PendingRead): void {
    this.#reads.push(entry);
    this.#readsLive++;
    if (this.#readsTimer === null) this.#arm();
  }

  #untrack(entry: PendingRead): void {
    if (entry.done) return;
    entry.done = true;
    // None in progress: no timer left behind (it would hold the process up to a deadline).
    if (--this.#readsLive === 0) {
      this.opts.timers.clearTimeout(this.#readsTimer ?? undefined);
      this.#readsTimer = null;
      this.#reads = [];
      this.#readsHead = 0;
    }
  }

  /** Arms the one timer for the first read still in progress (none left: no timer). */
  #arm(): void {
    const reads = this.#reads;
    while (this.#readsHead < reads.length && reads[this.#readsHead]!.done) this.#readsHead++;
    if (this.#readsHead === reads.length) {
      this.#reads = [];
      this.#readsHead = 0;
      this.#readsTimer = null;
      return;
    }
    if (this.#readsHead > 1024) {
      this.#reads = reads.slice(this.#readsHead);
      this.#readsHead = 0;
    }
    const first = this.#reads[this.#readsHead]!;
    this.#readsTimer = this.opts.timers.setTimeout(
      () => this.#expire(),
      Math.max(0, first.deadline - performance.now()),
    );
  }

  #expire(): void {
    const now = performance.now();
    const reads = this.#reads;
    while (this.#readsHead < reads.length) {
      const r = reads[this.#readsHead]!;
      if (!r.done && r.deadline > now) break;
      this.#readsHead++;
      if (!r.done) {
        r.done = true;
        this.#readsLive--;
        r.fail(this.#timeoutError());
      }
    }
    this.#arm();
  }

  #timeoutError(): GatewayError {
    return new GatewayError(
      "request_timeout",
      `The request body did not arrive within ${Math.round(this.opts.timeoutMs / 1000)} seconds`,
      {},
      { connection: "close" },
    );
  }

  /**
   * The request's body under the size limit and the deadline (the deadline runs from now), as a
   * wrapper stream or read in one go ({@link GuardedBody}); `onDone` runs once when the body is read,
   * fails or is cancelled. Nothing is read from `body` until one of them reads it.
   */
  guard(body: ReadableStream<Uint8Array>, onDone: () => void): GuardedBody {
    const { maxBytes, timeoutMs } = this.opts;
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    let received = 0;
    let finished = false;
    // The deadline, in the queue every read in progress shares (its timer fails the body).
    const deadline: PendingRead = {
      deadline: performance.now() + timeoutMs,
      done: false,
      fail: (e) => fail(e),
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      this.#untrack(deadline);
      onDone();
    };
    const cancelSource = (reason: unknown) => {
      if (reader) reader.cancel(reason).catch(() => {});
      else if (!body.locked) body.cancel(reason).catch(() => {});
    };
    // The read in one go's rejection, while one runs (see `text` below).
    let rejectWhole: ((e: GatewayError) => void) | null = null;
    let fail: (e: GatewayError) => void = () => {};
    this.#track(deadline);
    const tooLarge = () =>
      new GatewayError(
        "payload_too_large",
        `Request body exceeds the maximum allowed size of ${maxBytes} bytes`,
        {},
        { connection: "close" },
      );
    const stream = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          fail = (e) => {
            if (finished) return;
            controller.error(e);
            cancelSource(e);
            rejectWhole?.(e);
            finish();
          };
        },
        async pull(controller) {
          try {
            reader ??= body.getReader();
            const { value, done } = await reader.read();
            if (finished) return;
            if (done) {
              controller.close();
              finish();
              return;
            }
            received += value.byteLength;
            if (received > maxBytes) {
              fail(tooLarge());
              return;
            }
            controller.enqueue(value);
          } catch (e) {
            if (finished) return;
            controller.error(e);
            finish();
          }
        },
        cancel(reason) {
          cancelSource(reason);
          finish();
        },
      },
      // Pulled only when read: the body stays untouched (and readable in one go) until then.
      { highWaterMark: 0 },
    );
    let wholeTaken = false;
    const readWhole = async () => {
      // The runtime reads the body in one go, far cheaper than chunk by chunk through the wrapper.
      // The deadline still holds: it rejects the read. The limit holds by the caller's check of the
      // declared length, which frames the body (no more of it can be read).
      const failed = new Promise<never>((_, reject) => {
        rejectWhole = reject;
      });
      const text = new Response(body).text();
      text.catch(() => {});
      try {
        return await Promise.race([text, failed]);
      } finally {
        rejectWhole = null;
        finish();
      }
    };
    return {
      stream,
      text: (headers) => {
        // Nothing read from the body yet, through the wrapper or otherwise.
        const untouched = !wholeTaken && !stream.locked && !finished && reader === null && !body.locked;
        if (untouched && framedBy(headers, maxBytes)) {
          wholeTaken = true;
          return readWhole();
        }
        return new Response(stream).text();
      },
    };
  }
}

/** A request body behind {@link BodyGuard.guard}. */
export interface GuardedBody {
  /** The body through the limit and the deadline, chunk by chunk: what the web framework reads. */
  readonly stream: ReadableStream<Uint8Array>;
  /**
   * The body's text, decoded as `Request.text()` decodes it, under the guard's limit and deadline
   * (`headers`: the request's). A body that {@link framedBy its headers frame} and that nothing has
   * read yet is read by the runtime in one go: read chunk by chunk through the wrapper it costs
   * about three times the CPU, and its text is slower to parse and to send on. Anything else is
   * read through the wrapper.
   */
  text(headers: Headers): Promise<string>;
}

/**
 * The request's declared `Content-Length` as a number: null when there is none or it is not 1 to
 * 15 digits (a value beyond that is no length the gateway could take in).
 *
 * Two other rules read the header on purpose more loosely, and keep doing so: admission
 * (src/access/admission.ts) refuses early any value that reads as a number above the limit
 * (`Number()`, so "1e9" too), and the admin content-type check (src/access/csrf.ts) counts any
 * `Transfer-Encoding` or any `Content-Length` other than "0" (even a malformed one) as a body, so
 * an odd header can neither slip a large body past the first nor an untyped body past the second.
 */
export function declaredLength(headers: Headers): number | null {
  const declared = headers.get("content-length");
  return declared !== null && /^\d{1,15}$/.test(declared) ? Number(declared) : null;
}

/**
 * Whether the request's declared `Content-Length` frames its body within the limit `maxBytes` (and
 * no `Transfer-Encoding` overrides it): then no more than that can be read, and the runtime may read
 * the body in one go. Otherwise (a chunked body) it is counted as it comes.
 */
export function framedBy(headers: Headers, maxBytes: number): boolean {
  const declared = declaredLength(headers);
  return declared !== null && declared <= maxBytes && !headers.has("transfer-encoding");
}

/**
 * Whether `request` has a body. A positive declared `Content-Length` says so without `request.body`,
 * whose getter makes a stream object per request (the server gives such a request its body); only
 * a request without one (chunked, or none at all) is asked through the getter.
 */
export function hasBody(request: Request): boolean {
  const declared = declaredLength(request.headers);
  if (declared !== null && declared > 0) return true;
  return request.body !== null;
}

/** The GatewayError a body guard failed with, found in an error's `cause` chain (Elysia wraps it). */
export function guardErrorOf(error: unknown): GatewayError | null {
  let e: unknown = error;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof GatewayError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
