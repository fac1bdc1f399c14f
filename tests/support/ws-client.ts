/**
 * A plain WebSocket test client (the `ws` package, which shows the upgrade's HTTP answer): opens a
 * Responses WebSocket on the gateway, queues every text frame as JSON, and reads one turn's frames
 * up to its terminal event.
 *
 * @module
 */
import WebSocket from "ws";

type Json = Record<string, unknown>;

export interface WsClient {
  readonly socket: WebSocket;
  /** Headers of the 101 answer. */
  readonly headers: Record<string, string | string[] | undefined>;
  send(msg: Json | string): void;
  /** The next frame (waits up to `ms`). */
  next(ms?: number): Promise<Json>;
  /** Frames up to and including the turn's terminal event (or an `error` frame). */
  turn(msg: Json, ms?: number): Promise<Json[]>;
  /** Resolves with the close code and reason once the socket is closed. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

const TERMINAL = new Set(["response.completed", "response.failed", "response.incomplete", "error"]);

/** Opens a socket; rejects with `{ status, body }` when the upgrade is answered with HTTP. */
export function openWs(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const frames: Json[] = [];
    const waiters: ((j: Json) => void)[] = [];
    let upgradeHeaders: WsClient["headers"] = {};
    const closed = new Promise<{ code: number; reason: string }>((r) => {
      socket.on("close", (code, reason) => r({ code, reason: reason.toString() }));
    });
    socket.on("upgrade", (res) => {
      upgradeHeaders = res.headers;
    });
    socket.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => {
        body += c.toString();
      });
      res.on("end", () => reject({ status: res.statusCode, body, headers: res.headers }));
    });
    socket.on("error", (e) => reject(e));
    socket.on("message", (data) => {
      const j = JSON.parse(data.toString()) as Json;
      const w = waiters.shift();
      if (w) w(j);
      else frames.push(j);
    });
    socket.on("open", () => {
      const client: WsClient = {
        socket,
        headers: upgradeHeaders,
        send: (m) => socket.send(typeof m === "string" ? m : JSON.stringify(m)),
        next: (ms = 5000) => {
          const f = frames.shift();
          if (f) return Promise.resolve(f);
          return new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error("no frame in time")), ms);
            waiters.push((j) => {
              clearTimeout(t);
              res(j);
            });
          });
        },
        async turn(msg, ms = 5000) {
          client.send(msg);
          const out: Json[] = [];
          for (;;) {
            const f = await client.next(ms);
            out.push(f);
            if (TERMINAL.has(String(f.type))) return out;
          }
        },
        closed,
        close: () => socket.close(),
      };
      resolve(client);
    });
  });
}

/** `http://…` → `ws://…`. */
export const wsUrl = (httpUrl: string, path: string) => `${httpUrl.replace(/^http/, "ws")}${path}`;
