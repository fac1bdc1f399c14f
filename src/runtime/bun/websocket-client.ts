/**
 * The Bun seam for outgoing WebSockets: a client socket with custom handshake headers (Bun's
 * `WebSocket` accepts `{ headers }`, the web standard does not). A refused handshake comes back as
 * a value carrying the HTTP status the server answered with, so callers can tell "this server does
 * not speak WebSocket here" from "the network failed".
 *
 * @module
 */
import { type Clock, systemClock } from "../../core/clock.ts";

export type ConnectResult =
  | { readonly ok: true; readonly socket: WebSocket }
  | {
      readonly ok: false;
      /** The HTTP status of a refused handshake, or null when no HTTP answer came (network, timeout). */
      readonly status: number | null;
      readonly message: string;
      readonly timeout: boolean;
    };

/** Bun's wording for a handshake answered without 101. */
const REFUSED = /Expected 101 status code: (\d{3})/;

/** Opens a client WebSocket to `url` with `headers`; resolves once it is open or has failed. */
export function connectWebSocket(
  url: string,
  headers: Headers,
  timeoutMs: number,
  signal?: AbortSignal,
  /** The handshake deadline runs on these (the gateway's clock); the real ones by default. */
  timers: Pick<Clock, "setTimeout" | "clearTimeout"> = systemClock,
): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const plain: Record<string, string> = {};
    headers.forEach((v, k) => {
      plain[k] = v;
    });
    let socket: WebSocket;
    try {
      socket = new WebSocket(url, { headers: plain } as unknown as string[]);
    } catch (e) {
      resolve({
        ok: false,
        status: null,
        message: e instanceof Error ? e.message : String(e),
        timeout: false,
      });
      return;
    }
    let done = false;
    let errorMessage = "WebSocket connection failed";
    const finish = (r: ConnectResult) => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.onopen = null;
      socket.onerror = null;
      socket.onclose = null;
      resolve(r);
    };
    const timer = timers.setTimeout(() => {
      finish({ ok: false, status: null, message: "WebSocket handshake timed out", timeout: true });
      socket.close();
    }, timeoutMs);
    const onAbort = () => {
      finish({ ok: false, status: null, message: "Client went away", timeout: false });
      socket.close();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.onopen = () => finish({ ok: true, socket });
    socket.onerror = (e) => {
      const m = (e as ErrorEvent).message;
      if (typeof m === "string" && m !== "") errorMessage = m;
    };
    socket.onclose = () => {
      const refused = REFUSED.exec(errorMessage);
      finish({
        ok: false,
        status: refused ? Number(refused[1]) : null,
        message: errorMessage,
        timeout: false,
      });
    };
  });
}
