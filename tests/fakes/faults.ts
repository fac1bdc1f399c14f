/**
 * A fault-injecting upstream on a raw TCP socket (127.0.0.1, ephemeral port), for the faults an
 * HTTP server library cannot produce: it reads each HTTP/1.1 request itself and, for
 * `POST /backend-api/codex/responses` of an account given a fault, misbehaves as a broken network
 * or backend would. Every other request (and every account without a fault) is forwarded to
 * `forwardTo` (the regular fakes, tests/fakes/server.ts) and the answer written back, so the gateway
 * can point its upstream at this server and still read models and usage.
 *
 * Modes (one per account, by the `chatgpt-account-id` header):
 * - `reset_before_headers`: the request is read, then the connection is closed without a byte.
 * - `reset_after_headers`: `200` SSE headers, `response.created` and a first text delta, then the
 *   connection is closed mid-body (no terminal event, no chunked terminator).
 * - `garbage_sse`: `200 text/event-stream` whose body is bytes that are no SSE events (binary junk,
 *   `data:` lines that are not JSON), then a clean end.
 * - `hang`: the request is read and never answered (the connection stays open until the gateway
 *   gives up on it).
 * - `drip`: a valid answer written a few bytes at a time (split inside multi-byte characters).
 * - `huge_event`: `response.created`, a delta, then one event larger than the gateway's 16 MiB limit.
 *
 * @module
 */
import type { Socket } from "bun";
import { frame, textEvents } from "./codex-events.ts";

export type FaultMode =
  | "reset_before_headers"
  | "reset_after_headers"
  | "garbage_sse"
  | "hang"
  | "drip"
  | "huge_event";

export interface FaultServer {
  readonly url: string;
  /** Gives an account (its `chatgpt-account-id`) a fault; null clears it. */
  set(chatgptAccountId: string, mode: FaultMode | null): void;
  /** Faults injected so far, in order (`mode` and the account). */
  readonly injected: { mode: FaultMode; account: string }[];
  /** Hung connections the gateway has closed (it gave up on them). */
  readonly hungClosed: number;
  /** The text the `drip` mode sends (the answer a client must receive whole). */
  readonly dripText: string;
  stop(): Promise<void>;
}

const enc = new TextEncoder();
const RESPONSES = "/backend-api/codex/responses";
const SSE_HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
/** One HTTP/1.1 chunk of `text`. */
const chunk = (bytes: Uint8Array): Uint8Array => {
  const head = enc.encode(`${bytes.length.toString(16)}\r\n`);
  const out = new Uint8Array(head.length + bytes.length + 2);
  out.set(head);
  out.set(bytes, head.length);
  out.set(enc.encode("\r\n"), head.length + bytes.length);
  return out;
};
const DRIP_TEXT = "Dripped answer: héllo wörld 🙂 – 日本語 ✓";

interface Conn {
  buf: Uint8Array;
  busy: boolean;
  hung: boolean;
}

interface ParsedRequest {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

/** The first complete request in `buf`, and how many bytes it took; null while incomplete. */
function parse(buf: Uint8Array): { req: ParsedRequest; used: number } | null {
  const text = new TextDecoder("latin1").decode(buf);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [line, ...lines] = text.slice(0, end).split("\r\n");
  const [method = "", target = "/"] = (line ?? "").split(" ");
  const headers = new Headers();
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
  }
  const start = end + 4;
  if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
    // Chunked request body: decode it.
    const parts: Uint8Array<ArrayBuffer>[] = [];
    let at = start;
    for (;;) {
      const rest = text.slice(at);
      const nl = rest.indexOf("\r\n");
      if (nl < 0) return null;
      const size = Number.parseInt(rest.slice(0, nl), 16);
      if (!Number.isFinite(size)) throw new Error("fault server: bad chunk size");
      const dataAt = at + nl + 2;
      if (buf.length < dataAt + size + 2) return null;
      if (size === 0) {
        const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          body.set(p, o);
          o += p.length;
        }
        return { req: { method, path: target, headers, body }, used: dataAt + 2 };
      }
      parts.push(buf.slice(dataAt, dataAt + size));
      at = dataAt + size + 2;
    }
  }
  const length = Number(headers.get("content-length") ?? "0");
  if (buf.length < start + length) return null;
  return {
    req: { method, path: target, headers, body: buf.slice(start, start + length) },
    used: start + length,
  };
}

/** Starts a fault server in front of `forwardTo` (the base URL of the regular fakes). */
export function startFaultServer(forwardTo: string): FaultServer {
  const modes = new Map<string, FaultMode>();
  const injected: { mode: FaultMode; account: string }[] = [];
  let hungClosed = 0;

  const write = async (s: Socket<Conn>, bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) {
      const n = s.write(bytes.subarray(off));
      if (n < 0) throw new Error("fault server: socket closed");
      off += n;
      if (off < bytes.length) await Bun.sleep(1);
    }
  };

  const forward = async (s: Socket<Conn>, req: ParsedRequest) => {
    const headers = new Headers(req.headers);
    for (const h of ["host", "connection", "content-length", "transfer-encoding", "keep-alive"])
      headers.delete(h);
    const res = await fetch(`${forwardTo}${req.path}`, {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : req.body,
    });
    const body = new Uint8Array(await res.arrayBuffer());
    let head = `HTTP/1.1 ${res.status} ${res.statusText || "OK"}\r\n`;
    res.headers.forEach((v, k) => {
      if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(k))
        head += `${k}: ${v}\r\n`;
    });
    head += `content-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n`;
    await write(s, enc.encode(head));
    await write(s, body);
  };

  const fault = async (s: Socket<Conn>, mode: FaultMode, model: string) => {
    const id = `resp_fault_${injected.length}`;
    switch (mode) {
      case "reset_before_headers":
        s.terminate();
        return;
      case "reset_after_headers": {
        const { head } = textEvents(id, model, "cut off here", {});
        await write(s, enc.encode(SSE_HEAD));
        await write(s, chunk(enc.encode(head.map(frame).join(""))));
        await Bun.sleep(20);
        s.terminate();
        return;
      }
      case "garbage_sse": {
        await write(s, enc.encode(SSE_HEAD));
        const junk = new Uint8Array(512);
        for (let i = 0; i < junk.length; i++) junk[i] = (i * 37 + 11) % 256;
        await write(s, chunk(junk));
        await write(
          s,
          chunk(enc.encode("data: {not json at all\n\ndata: ]]]\n\nevent: ???\ndata: \u0000\n\n")),
        );
        await write(s, enc.encode("0\r\n\r\n"));
        s.end();
        return;
      }
      case "hang":
        s.data.hung = true;
        return;
      case "drip": {
        const { head, tail } = textEvents(id, model, DRIP_TEXT, {});
        const bytes = enc.encode([...head, ...tail].map(frame).join(""));
        await write(s, enc.encode(SSE_HEAD));
        for (let i = 0; i < bytes.length; i += 3) {
          await write(s, chunk(bytes.subarray(i, Math.min(bytes.length, i + 3))));
          await Bun.sleep(0);
        }
        await write(s, enc.encode("0\r\n\r\n"));
        s.end();
        return;
      }
      case "huge_event": {
        const { head } = textEvents(id, model, "before the huge event", {});
        await write(s, enc.encode(SSE_HEAD));
        await write(s, chunk(enc.encode(head.map(frame).join(""))));
        const piece = enc.encode("x".repeat(1024 * 1024));
        await write(s, chunk(enc.encode('data: {"type":"response.output_text.delta","delta":"')));
        // 17 MiB in one event, with no blank line: past the gateway's 16 MiB limit.
        for (let i = 0; i < 17; i++) await write(s, chunk(piece));
        await write(s, chunk(enc.encode('"}\n\n')));
        await write(s, enc.encode("0\r\n\r\n"));
        s.end();
        return;
      }
    }
  };

  const handle = async (s: Socket<Conn>) => {
    if (s.data.busy || s.data.hung) return;
    s.data.busy = true;
    try {
      for (;;) {
        const p = parse(s.data.buf);
        if (!p) return;
        s.data.buf = s.data.buf.slice(p.used);
        const account = p.req.headers.get("chatgpt-account-id") ?? "";
        const mode =
          p.req.method === "POST" && p.req.path.startsWith(RESPONSES) ? modes.get(account) : undefined;
        if (!mode) {
          await forward(s, p.req);
          continue;
        }
        injected.push({ mode, account });
        let model = "gpt-5.2";
        try {
          model = String(
            (JSON.parse(new TextDecoder().decode(p.req.body)) as { model?: unknown }).model ?? model,
          );
        } catch {
          // keep the default
        }
        await fault(s, mode, model);
        return;
      }
    } catch {
      s.terminate();
    } finally {
      s.data.busy = false;
    }
  };

  const server = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: new Uint8Array(0), busy: false, hung: false };
      },
      data(s, data) {
        const next = new Uint8Array(s.data.buf.length + data.length);
        next.set(s.data.buf);
        next.set(data, s.data.buf.length);
        s.data.buf = next;
        void handle(s);
      },
      close(s) {
        if (s.data?.hung) hungClosed++;
      },
      error() {},
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    set(account, mode) {
      if (mode === null) modes.delete(account);
      else modes.set(account, mode);
    },
    injected,
    get hungClosed() {
      return hungClosed;
    },
    dripText: DRIP_TEXT,
    async stop() {
      server.stop(true);
    },
  };
}
