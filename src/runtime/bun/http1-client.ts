/**
 * A main-thread HTTP/1.1 client on `Bun.connect`, for the upstream calls (`sendUpstream`): the
 * subset of `fetch` the gateway uses, answering with a standard `Response`.
 *
 * Why: Bun's `fetch` runs every request on its "HTTP Client" thread and hands each answer's bytes
 * back to the main thread; at the gateway's load that hand-off is a large share of a request's CPU
 * (`scripts/bench-upstream-client.ts`: a main-thread client used 21–43 % less CPU per proxied
 * request and answered about 0.1 ms sooner at one connection). Here the socket's bytes arrive on the
 * main thread, the status line and headers are parsed once, and the body's bytes go into the
 * answer's stream as they arrive (chunked framing removed, nothing else touched).
 *
 * What it does, as `fetch` does: `http:` and `https:` (TLS verified against the system's trust
 * store, or `tls.ca`; the request is written only after the handshake verified the peer), keep-alive
 * connections pooled per origin, `content-length`, chunked and read-until-close answers,
 * informational (1xx) answers skipped, gzip/deflate/br/zstd answers decoded as they stream, an abort
 * signal that ends the wait for headers or the body with the signal's reason, failures as a
 * `TypeError` with a `code` (`ECONNREFUSED`, `ECONNRESET`, a TLS verification code, …).
 * What it does not: proxies (the caller keeps `fetch` when one is configured) and redirects (an
 * upstream 3xx is the answer: account tokens never follow a redirect to another origin).
 *
 * Hostile or broken answers end in an error, never a hang: a header block over 64 KB, a bad status
 * line, header or chunk size, two different `content-length`s, a connection closed before the
 * answer's end (the body's stream errors; a short body is never passed off as whole).
 *
 * @module
 */

/** Options of {@link http1Fetch}. */
export interface Http1Init {
  readonly method: string;
  readonly headers: Headers;
  /**
   * The body. Bytes are read when the request is written: not changed by the caller until the
   * answer's headers came, unless {@link remakeBody} is given.
   */
  readonly body?: string | Uint8Array | null;
  /**
   * Given: `body` (bytes) is valid only during the call (a buffer the caller reuses), and this makes
   * those bytes again. The client writes them within the call when a kept-alive connection is
   * free, copies what it could not write (or all of it, for a new connection), and calls this when
   * it must write the request once more (a retry).
   */
  readonly remakeBody?: () => Uint8Array;
  readonly signal?: AbortSignal;
  /** TLS for `https:`: `ca` replaces the system's trust store (tests: a local CA). */
  readonly tls?: { readonly ca?: string | readonly string[] };
}

/** Largest header block accepted (status line and headers). */
const MAX_HEAD = 64 * 1024;
/** Seconds an idle pooled connection is kept, unless the server's `keep-alive: timeout=` is lower. */
const IDLE_SECONDS = 30;
/** Idle connections kept per origin at most (more are closed when they come back). */
const MAX_IDLE = 512;
/** Socket reads a response body's stream queues before the socket stops reading (a slow reader). */
const BODY_HIGH_WATER_CHUNKS = 16;
const ACCEPT_ENCODING = "gzip, deflate, br, zstd";
const USER_AGENT = `Bun/${Bun.version}`;

const CR = 13;
const LF = 10;
const latin1 = new TextDecoder("latin1");

/** The error every failure rejects or errors a body with, as `fetch`'s: a `TypeError` with a code. */
function failure(code: string, message: string): TypeError {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = code;
  return e;
}

/** A connection that could not be opened, as `fetch` reports it (`ECONNREFUSED: Unable to connect…`). */
/** An answer's header block or trailers over {@link MAX_HEAD}. */
function tooLarge(what: string): TypeError {
  return failure("ERR_HEADERS_TOO_LARGE", `upstream ${what} over ${MAX_HEAD / 1024} KB`);
}

function connectFailure(e: unknown, fallback: string): TypeError {
  const code = (e as { code?: unknown } | null)?.code;
  const c = typeof code === "string" ? code : fallback;
  return failure(c, `${c}: Unable to connect. Is the computer able to access the url?`);
}

/** A connection lost before the answer's end, as `fetch` reports it. */
function resetFailure(e: Error | null): TypeError {
  const code = (e as { code?: unknown } | null)?.code;
  return failure(
    typeof code === "string" ? code : "ECONNRESET",
    e?.message || "The socket connection was closed unexpectedly.",
  );
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted.", "AbortError");
}

type Socket = Bun.Socket<Conn>;

/** Body framing of the answer being read. */
const Framing = { None: 0, Length: 1, Chunked: 2, Close: 3 } as const;
type FramingStep = (typeof Framing)[keyof typeof Framing];

/** Chunked decoding steps. */
const Chunk = {
  Size: 0,
  Ext: 1,
  SizeLf: 2,
  Data: 3,
  DataCr: 4,
  DataLf: 5,
  Trailer: 6,
  TrailerLf: 7,
} as const;
type ChunkStep = (typeof Chunk)[keyof typeof Chunk];

/** A request on its way: from the write until its answer's end. */
class Exchange {
  readonly resolve: (r: Response) => void;
  readonly reject: (e: unknown) => void;
  readonly head: boolean;
  readonly signal: AbortSignal | undefined;
  readonly url: URL;
  readonly method: string;
  /**
   * The request's headers and body; its bytes are made as they are written (see
   * {@link writeRequest}). Dropped once the request is written and an answer began (no retry after that).
   */
  headers: Headers | null;
  body: string | Uint8Array | null;
  /**
   * Set while `body` is the caller's reused buffer, valid only during the call (or, once written
   * from it, dropped): makes those bytes again ({@link Http1Init.remakeBody}). Null once the body
   * is the client's own copy.
   */
  remakeBody: (() => Uint8Array) | null;
  /**
   * What a write left for `drain`: the rest of the request, copied (the bytes made are not kept).
   * The request's writing began on this connection when this is set or the request is `sent`.
   */
  rest: Uint8Array | null = null;
  /** The whole request is written. */
  sent = false;
  /** Bytes of the answer seen (a reused connection closed before any may be retried). */
  received = 0;
  /** The header block gathered so far. */
  headBytes: Uint8Array | null = null;
  /** The answer's body stream, once the headers are read. */
  stream: ReadableStreamDefaultController<Uint8Array> | null = null;
  responded = false;
  done = false;
  framing: FramingStep = Framing.None;
  /** Body bytes still to come (Length), or of the current chunk (Chunked). */
  left = 0;
  chunk: ChunkStep = Chunk.Size;
  keepAlive = true;
  idleSeconds = IDLE_SECONDS;
  paused = false;
  onAbort: (() => void) | null = null;
  /** The connection carrying it (for an abort). */
  conn: Conn | null = null;
  /** Tries left on a fresh connection when a reused one was closed before answering. */
  retries: number;

  constructor(
    resolve: (r: Response) => void,
    reject: (e: unknown) => void,
    head: boolean,
    signal: AbortSignal | undefined,
    url: URL,
    init: Http1Init,
  ) {
    this.resolve = resolve;
    this.reject = reject;
    this.head = head;
    this.signal = signal;
    this.url = url;
    this.method = init.method.toUpperCase();
    this.headers = init.headers;
    this.body = init.body ?? null;
    this.remakeBody = init.remakeBody && this.body instanceof Uint8Array ? init.remakeBody : null;
    this.retries = 1;
  }
}

/** One connection: its pool, and the exchange it carries (one at a time: no pipelining). */
class Conn {
  readonly pool: Pool;
  socket: Socket | null = null;
  ex: Exchange | null = null;
  /** Set once the TLS handshake verified the peer (always for `http:`). */
  ready: boolean;
  /** Served at least one exchange (a close before an answer may then be a stale keep-alive). */
  reused = false;
  closed = false;

  constructor(pool: Pool) {
    this.pool = pool;
    this.ready = !pool.tls;
  }
}

/** Connections of one origin. */
class Pool {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly hostHeader: string;
  readonly ca: string | readonly string[] | undefined;
  readonly idle: Conn[] = [];
  open = 0;

  constructor(url: URL, ca: string | readonly string[] | undefined) {
    this.tls = url.protocol === "https:";
    // URL keeps brackets around an IPv6 host; Bun.connect wants the bare address.
    const h = url.hostname;
    this.hostname = h.startsWith("[") ? h.slice(1, -1) : h;
    this.port = url.port ? Number(url.port) : this.tls ? 443 : 80;
    this.hostHeader = url.host;
    this.ca = ca;
  }
}

const pools = new Map<string, Pool>();

let proxyConfigured: boolean | null = null;

/**
 * Whether {@link http1Fetch} may carry a request to `url`: `http:` or `https:`, and no proxy
 * configured for `fetch` (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, any case: those deployments keep
 * `fetch`, which honours them and `NO_PROXY`). The environment is read once.
 */
export function http1Serves(url: string): boolean {
  if (proxyConfigured === null) {
    proxyConfigured = ["http_proxy", "https_proxy", "all_proxy"].some(
      (k) => !!(process.env[k] || process.env[k.toUpperCase()]),
    );
  }
  return !proxyConfigured && (url.startsWith("http://") || url.startsWith("https://"));
}

function poolFor(url: URL, ca: string | readonly string[] | undefined): Pool {
  const key = ca === undefined ? url.origin : `${url.origin}\u0000${[ca].flat().join("\u0000")}`;
  let p = pools.get(key);
  if (!p) {
    p = new Pool(url, ca);
    pools.set(key, p);
  }
  return p;
}

/** Open and idle connections of `origin` (tests: keep-alive reuse). */
export function http1PoolStats(origin: string): { open: number; idle: number } {
  let open = 0;
  let idle = 0;
  for (const [key, p] of pools) {
    if (key !== origin && !key.startsWith(`${origin}\u0000`)) continue;
    open += p.open;
    idle += p.idle.length;
  }
  return { open, idle };
}

/** Request headers the client writes itself (framing and connection management). */
const OWN_HEADERS = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"]);

/**
 * The buffer every request's bytes are made in ({@link requestBytes}), reused: a request is written
 * in the call that made its bytes, and what the socket did not take is copied. A new buffer the size
 * of a long Codex history per request cost more than its copy (allocation, page faults, the
 * collector). Grows to the largest request up to {@link SEND_BUFFER_MAX}; a larger one gets its own.
 */
let sendBuffer = Buffer.allocUnsafe(16 * 1024);
const SEND_BUFFER_MAX = 8 * 1024 * 1024;

function sendBufferOf(size: number): Buffer {
  if (size <= sendBuffer.length) return sendBuffer;
  if (size > SEND_BUFFER_MAX) return Buffer.allocUnsafe(size);
  sendBuffer = Buffer.allocUnsafe(Math.min(SEND_BUFFER_MAX, Math.max(size, sendBuffer.length * 2)));
  return sendBuffer;
}

/**
 * The request's bytes (request line, headers, body), in the shared {@link sendBuffer}: valid until
 * the next call, so written at once (see {@link writeRequest}).
 */
function requestBytes(ex: Exchange, pool: Pool): Uint8Array {
  const { url, method, body } = ex;
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${pool.hostHeader}\r\n`;
  let ua = false;
  let accept = false;
  let acceptEncoding = false;
  ex.headers!.forEach((value, name) => {
    if (OWN_HEADERS.has(name)) return;
    if (name === "user-agent") ua = true;
    else if (name === "accept") accept = true;
    else if (name === "accept-encoding") acceptEncoding = true;
    head += `${name}: ${value}\r\n`;
  });
  head += "Connection: keep-alive\r\n";
  if (!ua) head += `User-Agent: ${USER_AGENT}\r\n`;
  if (!accept) head += "Accept: */*\r\n";
  if (!acceptEncoding) head += `Accept-Encoding: ${ACCEPT_ENCODING}\r\n`;
  // The head is written as Latin-1: header values are byte strings (each character one byte, as
  // `fetch` sends them), the path and host are ASCII. A string body is UTF-8. Head and body in one
  // buffer: one write for everything but the largest bodies.
  if (body === null) {
    if (method !== "GET" && method !== "HEAD") head += "Content-Length: 0\r\n";
    head += "\r\n";
    const out = sendBufferOf(head.length);
    return out.subarray(0, out.write(head, 0, "latin1"));
  }
  head += "Content-Length: ";
  if (typeof body === "string") {
    const bodyLen = Buffer.byteLength(body, "utf8");
    head += `${bodyLen}\r\n\r\n`;
    const out = sendBufferOf(head.length + bodyLen);
    out.write(head, 0, "latin1");
    out.write(body, head.length, "utf8");
    return out.subarray(0, head.length + bodyLen);
  }
  head += `${body.byteLength}\r\n\r\n`;
  const out = sendBufferOf(head.length + body.byteLength);
  out.write(head, 0, "latin1");
  out.set(body, head.length);
  return out.subarray(0, head.length + body.byteLength);
}

/**
 * Sends one request and resolves with its answer once the headers arrived. Rejects (a
 * `TypeError` with a `code`) when no answer came, or with `signal`'s reason when it aborted first.
 */
export function http1Fetch(url: string, init: Http1Init): Promise<Response> {
  const signal = init.signal;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(failure("ERR_INVALID_URL", `Invalid URL: ${url}`));
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    return Promise.reject(failure("ERR_UNSUPPORTED_PROTOCOL", `unsupported protocol ${u.protocol}`));
  const pool = poolFor(u, init.tls?.ca);
  // No closure is made in this scope: one would keep `init` (its body: a long Codex history, a few
  // hundred KB) alive with the scope until the answer's end, after the exchange dropped it.
  const { promise, resolve, reject } = Promise.withResolvers<Response>();
  const ex = new Exchange(resolve, reject, init.method.toUpperCase() === "HEAD", signal, u, init);
  if (signal) watchAbort(ex, signal);
  start(pool, ex);
  // Not written within the call (a new connection): a body valid only now is copied.
  if (ex.remakeBody && !ex.sent && ex.rest === null) ownBody(ex, ex.body as Uint8Array);
  return promise;
}

/** Aborts `ex` when `signal` does (removed once the exchange is over). */
function watchAbort(ex: Exchange, signal: AbortSignal): void {
  ex.onAbort = () => abortExchange(ex, abortReason(signal));
  signal.addEventListener("abort", ex.onAbort, { once: true });
}

/** The body becomes the client's own copy of `bytes` (no longer the caller's reused buffer). */
function ownBody(ex: Exchange, bytes: Uint8Array): void {
  ex.body = bytes.slice();
  ex.remakeBody = null;
}

function start(pool: Pool, ex: Exchange): void {
  const idle = pool.idle.pop();
  if (idle?.socket) {
    idle.socket.timeout(0);
    idle.socket.ref();
    attach(idle, ex);
    return;
  }
  const conn = new Conn(pool);
  pool.open++;
  ex.conn = conn;
  conn.ex = ex;
  connect(conn);
}

function connect(conn: Conn): void {
  const pool = conn.pool;
  let opened: Promise<Socket>;
  try {
    opened = Bun.connect<Conn>({
      hostname: pool.hostname,
      port: pool.port,
      data: conn,
      socket: handlers,
      tls: pool.tls
        ? {
            serverName: pool.hostname,
            rejectUnauthorized: true,
            ...(pool.ca ? { ca: pool.ca as string[] } : {}),
          }
        : undefined,
    } as unknown as Bun.TCPSocketConnectOptions<Conn>);
  } catch (e) {
    // Refused before any socket (a malformed host name, say): the same failure as a refusal.
    connFailed(conn, connectFailure(e, "ERR_CONNECT"));
    return;
  }
  opened.then(
    (s) => {
      conn.socket = s;
      if (conn.closed) {
        s.terminate();
        return;
      }
      s.setNoDelay(true);
      if (!conn.ex) {
        // Aborted while connecting.
        closeConn(conn);
        return;
      }
      if (conn.ready) writeRequest(conn);
    },
    (e: unknown) => connFailed(conn, connectFailure(e, "ECONNREFUSED")),
  );
}

/** Puts `ex` on an open, verified connection and writes its request. */
function attach(conn: Conn, ex: Exchange): void {
  conn.ex = ex;
  ex.conn = conn;
  writeRequest(conn);
}

/**
 * Writes `conn`'s request: its bytes are made (in the shared buffer) and written in one call; what
 * the socket did not take is copied and written on `drain`.
 */
function writeRequest(conn: Conn): void {
  const ex = conn.ex;
  const s = conn.socket;
  if (!ex || !s || ex.sent) return;
  let rest = ex.rest;
  if (rest === null) {
    const bytes = requestBytes(ex, conn.pool);
    // The caller's reused buffer is not read again: a retry makes the bytes anew (`remakeBody`).
    if (ex.remakeBody) ex.body = null;
    const n = s.write(bytes);
    if (n >= bytes.length) {
      sentAll(ex);
      return;
    }
    rest = bytes.slice(Math.max(0, n));
  }
  while (rest.length > 0) {
    const n = s.write(rest);
    if (n <= 0) break;
    rest = rest.subarray(n);
  }
  if (rest.length > 0)
    ex.rest = rest; // the rest on `drain`
  else sentAll(ex);
}

function dropRequest(ex: Exchange): void {
  ex.headers = null;
  ex.body = null;
  ex.remakeBody = null;
}

function sentAll(ex: Exchange): void {
  ex.sent = true;
  ex.rest = null;
  // Kept for a retry until an answer began; then no longer needed.
  if (ex.responded) dropRequest(ex);
}

/** The connection ended without an answer, or could not be opened. */
function connFailed(conn: Conn, err: TypeError): void {
  const ex = conn.ex;
  const wasReused = conn.reused;
  closeConn(conn);
  if (!ex || ex.done) return;
  if (!ex.responded && ex.received === 0 && wasReused && ex.retries > 0) {
    // A kept-alive connection the server closed as the request went out: nothing of an answer came,
    // the request goes once more on a fresh connection (as browsers and Node's clients do).
    ex.retries--;
    ex.rest = null;
    ex.sent = false;
    if (ex.remakeBody) {
      // Its bytes were written from the caller's buffer and not kept: made again, and kept.
      try {
        ownBody(ex, ex.remakeBody!());
      } catch (e) {
        failExchange(ex, e);
        return;
      }
    }
    ex.headBytes = null;
    start(conn.pool, ex);
    return;
  }
  failExchange(ex, err);
}

/** Ends `ex` with `err`: rejects the call, or errors the answer's body. */
function failExchange(ex: Exchange, err: unknown): void {
  if (ex.done) return;
  ex.done = true;
  if (ex.onAbort) ex.signal?.removeEventListener("abort", ex.onAbort);
  if (ex.stream) {
    try {
      ex.stream.error(err);
    } catch {
      // already closed or errored by its reader
    }
  } else ex.reject(err);
}

function abortExchange(ex: Exchange, reason: unknown): void {
  if (ex.done) return;
  const conn = ex.conn;
  failExchange(ex, reason);
  if (conn && conn.ex === ex) {
    conn.ex = null;
    closeConn(conn);
  }
}

/** Closes the connection for good (never back to the pool). */
function closeConn(conn: Conn): void {
  if (conn.closed) return;
  conn.closed = true;
  conn.ex = null;
  const pool = conn.pool;
  pool.open--;
  const i = pool.idle.indexOf(conn);
  if (i >= 0) pool.idle.splice(i, 1);
  conn.socket?.terminate();
}

/** The answer ended: the connection goes back to the pool, or is closed. */
function finishExchange(conn: Conn, ex: Exchange): void {
  ex.done = true;
  if (ex.onAbort) ex.signal?.removeEventListener("abort", ex.onAbort);
  try {
    ex.stream?.close();
  } catch {
    // its reader cancelled it
  }
  conn.ex = null;
  const s = conn.socket;
  // An answer that ended before its request was all written (an early 413, say): the rest of the
  // request would reach the server as the start of the next one. The connection is not reused.
  if (!ex.keepAlive || !ex.sent || !s || conn.closed || conn.pool.idle.length >= MAX_IDLE) {
    closeConn(conn);
    return;
  }
  conn.reused = true;
  if (ex.paused) s.resume();
  s.timeout(ex.idleSeconds);
  s.unref();
  conn.pool.idle.push(conn);
}

const handlers: Bun.SocketHandler<Conn> = {
  handshake(s, authorized, err) {
    const conn = s.data;
    if (!authorized) {
      const code = (err as { code?: string } | null)?.code ?? "ERR_TLS_CERT_UNTRUSTED";
      const message = (err as Error | null)?.message ?? "certificate verification failed";
      conn.socket = s;
      connFailed(conn, failure(code, message));
      return;
    }
    conn.ready = true;
    conn.socket = s;
    if (conn.ex) writeRequest(conn);
  },
  drain(s) {
    writeRequest(s.data);
  },
  data(s, bytes) {
    const conn = s.data;
    const ex = conn.ex;
    if (!ex || ex.done) {
      // Bytes on an idle connection, or after an answer's end: the connection cannot be trusted.
      closeConn(conn);
      return;
    }
    ex.received += bytes.length;
    try {
      if (ex.stream) body(conn, ex, bytes, 0);
      else headers(conn, ex, bytes);
    } catch (e) {
      closeConn(conn);
      failExchange(ex, e);
    }
  },
  timeout(s) {
    // Only idle connections have a timeout.
    closeConn(s.data);
  },
  close(s) {
    const conn = s.data;
    const ex = conn.ex;
    if (ex && !ex.done && ex.stream && ex.framing === Framing.Close) {
      // A read-until-close answer ends here (finishing closes the connection: not kept alive).
      finishExchange(conn, ex);
      return;
    }
    connFailed(conn, resetFailure(null));
  },
  error(s, err) {
    connFailed(s.data, resetFailure(err));
  },
  connectError(s, err) {
    connFailed(s.data, connectFailure(err, "ECONNREFUSED"));
  },
  end(s) {
    // The server half-closed: the answer so far is all (read-until-close), or the connection is done.
    s.end();
  },
};

/**
 * Where the header block in `b` ends, looking from `from`: the index of the line end before the
 * blank line (the block's text is `b[0, end)`), with the body starting at `end + skip`; -1 when the
 * blank line has not arrived. A bare LF ends a line as CR LF does (RFC 9112 §2.2, as `fetch` reads it).
 */
function headEnd(b: Uint8Array, from: number, out: { skip: number }): number {
  for (let i = b.indexOf(LF, from); i >= 0; i = b.indexOf(LF, i + 1)) {
    const next = b[i + 1];
    if (next === undefined) return -1;
    if (next === LF) {
      out.skip = 2;
      return b[i - 1] === CR ? i - 1 : i;
    }
    if (next === CR) {
      const after = b[i + 2];
      if (after === undefined) return -1;
      if (after === LF) {
        out.skip = 3;
        return b[i - 1] === CR ? i - 1 : i;
      }
    }
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/** Gathers and parses the header block; then hands the rest to {@link body}. */
function headers(conn: Conn, ex: Exchange, bytes: Uint8Array): void {
  let buf = bytes;
  let from = 0;
  if (ex.headBytes) {
    from = Math.max(0, ex.headBytes.length - 3);
    const joined = new Uint8Array(ex.headBytes.length + bytes.length);
    joined.set(ex.headBytes);
    joined.set(bytes, ex.headBytes.length);
    buf = joined;
  }
  const at = { skip: 0 };
  for (;;) {
    const end = headEnd(buf, from, at);
    if (end < 0) {
      if (buf.length > MAX_HEAD) throw tooLarge("header block");
      ex.headBytes = buf.slice();
      return;
    }
    if (end > MAX_HEAD) throw tooLarge("header block");
    const rest = buf.subarray(end + (buf[end] === CR ? at.skip + 1 : at.skip));
    ex.headBytes = null;
    if (!parseHead(conn, ex, latin1.decode(buf.subarray(0, end)))) {
      // An informational answer (1xx): the final one follows.
      if (rest.length === 0) return;
      buf = rest;
      from = 0;
      continue;
    }
    if (ex.framing === Framing.None) {
      if (rest.length > 0) ex.keepAlive = false;
      finishExchange(conn, ex);
      return;
    }
    if (rest.length > 0) body(conn, ex, rest, 0);
    return;
  }
}

/**
 * Parses a header block; returns false for an informational answer, true after resolving the
 * call with the final answer.
 */
function parseHead(conn: Conn, ex: Exchange, text: string): boolean {
  const lines = text.split(/\r?\n/);
  const m = STATUS_LINE.exec(lines[0]!);
  if (!m)
    throw failure(
      "ERR_BAD_RESPONSE",
      `malformed upstream status line ${JSON.stringify(lines[0]!.slice(0, 80))}`,
    );
  const status = Number(m[2]);
  if (status < 100 || status > 599)
    throw failure("ERR_BAD_RESPONSE", `upstream status ${status} out of range`);
  if (status < 200) {
    if (status === 101) throw failure("ERR_BAD_RESPONSE", "upstream switched protocols unasked");
    return false;
  }
  const h: [string, string][] = [];
  let length = -1;
  let chunked = false;
  let otherCoding = false;
  let keepAlive = m[1] === "1";
  let encoding: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(":");
    if (c <= 0) throw failure("ERR_BAD_RESPONSE", "malformed upstream header line");
    const name = line.slice(0, c);
    if (!TOKEN.test(name)) throw failure("ERR_BAD_RESPONSE", "malformed upstream header name");
    const value = line.slice(c + 1).trim();
    const lower = name.toLowerCase();
    if (lower === "content-length") {
      if (!/^\d+$/.test(value)) throw failure("ERR_BAD_RESPONSE", "malformed upstream content-length");
      const n = Number(value);
      if (length >= 0 && n !== length)
        throw failure("ERR_BAD_RESPONSE", "two different upstream content-lengths");
      length = n;
    } else if (lower === "transfer-encoding") {
      const codings = value.toLowerCase().split(",");
      const last = codings[codings.length - 1]!.trim();
      if (last === "chunked") chunked = true;
      else otherCoding = true;
    } else if (lower === "connection") {
      const v = value.toLowerCase();
      if (v.includes("close")) keepAlive = false;
      else if (v.includes("keep-alive")) keepAlive = true;
    } else if (lower === "keep-alive") {
      const t = /timeout=(\d+)/i.exec(value);
      if (t) ex.idleSeconds = Math.max(1, Math.min(IDLE_SECONDS, Number(t[1]) - 1));
    } else if (lower === "content-encoding") {
      encoding = value.toLowerCase();
    }
    h.push([name, value]);
  }
  ex.keepAlive = keepAlive;
  ex.responded = true;
  if (ex.sent) dropRequest(ex);
  if (ex.head || status === 204 || status === 304) {
    ex.framing = Framing.None;
  } else if (otherCoding) {
    ex.framing = Framing.Close;
    ex.keepAlive = false;
  } else if (chunked) {
    ex.framing = Framing.Chunked;
    ex.chunk = Chunk.Size;
    ex.left = 0;
  } else if (length >= 0) {
    ex.framing = length === 0 ? Framing.None : Framing.Length;
    ex.left = length;
  } else {
    ex.framing = Framing.Close;
    ex.keepAlive = false;
  }
  const statusText = m[3] ?? "";
  const nullBody = status === 204 || status === 205 || status === 304;
  let stream: ReadableStream<Uint8Array> | null = null;
  if (!nullBody) {
    stream = new ReadableStream<Uint8Array>(
      {
        start(c) {
          ex.stream = c;
        },
        pull() {
          if (ex.paused && !ex.done && conn.ex === ex) {
            ex.paused = false;
            conn.socket?.resume();
          }
        },
        cancel() {
          if (ex.done) return;
          ex.done = true;
          if (ex.onAbort) ex.signal?.removeEventListener("abort", ex.onAbort);
          if (conn.ex === ex) closeConn(conn);
        },
      },
      { highWaterMark: BODY_HIGH_WATER_CHUNKS },
    );
    const decoder = encoding !== null && ex.framing !== Framing.None ? decoderFor(encoding) : null;
    if (decoder)
      stream = stream.pipeThrough(decoder as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  }
  let response: Response;
  try {
    response = new Response(stream, { status, statusText, headers: h });
  } catch {
    throw failure("ERR_BAD_RESPONSE", "malformed upstream header value");
  }
  ex.resolve(response);
  return true;
}

/** A decoder for a `content-encoding`, or null for identity and codings left as they are. */
function decoderFor(
  encoding: string,
): ReadableWritablePair<Uint8Array, Uint8Array> | DecompressionStream | null {
  switch (encoding) {
    case "gzip":
    case "x-gzip":
      return new DecompressionStream("gzip");
    case "deflate":
      return deflateEither();
    case "br":
      return new DecompressionStream("brotli" as CompressionFormat);
    case "zstd":
      return new DecompressionStream("zstd" as CompressionFormat);
    default:
      return null;
  }
}

/**
 * A decoder for `content-encoding: deflate`, which servers send zlib-wrapped (RFC 9110) or, some
 * of them, raw: the first two bytes tell which (a zlib header is a multiple of 31 with method 8),
 * as `fetch` does.
 */
function deflateEither(): ReadableWritablePair<Uint8Array, Uint8Array> {
  const input = new TransformStream<Uint8Array, Uint8Array>();
  const reader = input.readable.getReader();
  let decoded: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const readable = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (!decoded) {
        const first = await reader.read();
        if (first.done) {
          c.close();
          return;
        }
        const b = first.value;
        const zlib = (b[0]! & 0x0f) === 8 && (b.length < 2 || ((b[0]! << 8) | b[1]!) % 31 === 0);
        const ds = new DecompressionStream(zlib ? "deflate" : "deflate-raw");
        const w = ds.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
        decoded = ds.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
        void (async () => {
          try {
            await w.write(b);
            for (;;) {
              const r = await reader.read();
              if (r.done) break;
              await w.write(r.value);
            }
            await w.close();
          } catch (e) {
            await w.abort(e).catch(() => {});
          }
        })();
      }
      const r = await decoded.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel(reason) {
      void reader.cancel(reason).catch(() => {});
      void decoded?.cancel(reason).catch(() => {});
    },
  });
  return { writable: input.writable, readable };
}

/** Passes body bytes `b[i..]` on, removing the chunked framing. */
function body(conn: Conn, ex: Exchange, b: Uint8Array, i: number): void {
  const c = ex.stream!;
  if (ex.framing === Framing.Close) {
    emit(conn, ex, c, i === 0 ? b : b.subarray(i));
    return;
  }
  if (ex.framing === Framing.Length) {
    const n = b.length - i;
    if (n > ex.left) {
      // More than the content-length: the answer is its first `left` bytes, the connection is not
      // trusted any more.
      emit(conn, ex, c, b.subarray(i, i + ex.left));
      ex.left = 0;
      ex.keepAlive = false;
      finishExchange(conn, ex);
      return;
    }
    ex.left -= n;
    emit(conn, ex, c, i === 0 ? b : b.subarray(i));
    if (ex.left === 0) finishExchange(conn, ex);
    return;
  }
  while (i < b.length) {
    switch (ex.chunk) {
      case Chunk.Data: {
        const take = Math.min(ex.left, b.length - i);
        emit(conn, ex, c, i === 0 && take === b.length ? b : b.subarray(i, i + take));
        ex.left -= take;
        i += take;
        if (ex.left === 0) ex.chunk = Chunk.DataCr;
        break;
      }
      case Chunk.Size: {
        const x = b[i]!;
        const d = hexDigit(x);
        if (d >= 0) {
          if (ex.left > 0x7fffffff / 16) throw failure("ERR_BAD_RESPONSE", "upstream chunk size too large");
          ex.left = ex.left * 16 + d;
        } else if (x === 0x3b || x === 0x20 || x === 0x09) ex.chunk = Chunk.Ext;
        else if (x === CR) ex.chunk = Chunk.SizeLf;
        else if (x === LF) {
          // A bare LF ends the line as CR LF does: the LF step reads it.
          ex.chunk = Chunk.SizeLf;
          break;
        } else throw failure("ERR_BAD_RESPONSE", "malformed upstream chunk size");
        i++;
        break;
      }
      case Chunk.Ext:
        if (b[i] === LF) {
          ex.chunk = Chunk.SizeLf;
          break;
        }
        if (b[i] === CR) ex.chunk = Chunk.SizeLf;
        i++;
        break;
      case Chunk.SizeLf:
        if (b[i] !== LF) throw failure("ERR_BAD_RESPONSE", "malformed upstream chunk size");
        i++;
        if (ex.left === 0) {
          ex.chunk = Chunk.Trailer;
          ex.left = 0;
        } else ex.chunk = Chunk.Data;
        break;
      case Chunk.DataCr:
        ex.chunk = Chunk.DataLf;
        if (b[i] === LF) break; // a bare LF
        if (b[i] !== CR) throw failure("ERR_BAD_RESPONSE", "upstream chunk longer than its size");
        i++;
        break;
      case Chunk.DataLf:
        if (b[i] !== LF) throw failure("ERR_BAD_RESPONSE", "upstream chunk longer than its size");
        ex.chunk = Chunk.Size;
        ex.left = 0;
        i++;
        break;
      case Chunk.Trailer: {
        // `left` counts the current trailer line's bytes; an empty line ends the answer.
        const x = b[i]!;
        if (x === LF) {
          ex.chunk = Chunk.TrailerLf; // a bare LF: the LF step reads it
          break;
        }
        i++;
        if (x === CR) ex.chunk = Chunk.TrailerLf;
        else if (++ex.left > MAX_HEAD) throw tooLarge("trailers");
        break;
      }
      case Chunk.TrailerLf: {
        if (b[i] !== LF) throw failure("ERR_BAD_RESPONSE", "malformed upstream trailer");
        i++;
        if (ex.left === 0) {
          // Bytes after the answer's end: the answer stands, the connection is not reused.
          if (i < b.length) ex.keepAlive = false;
          finishExchange(conn, ex);
          return;
        }
        ex.left = 0;
        ex.chunk = Chunk.Trailer;
        break;
      }
    }
  }
}

function hexDigit(x: number): number {
  if (x >= 0x30 && x <= 0x39) return x - 0x30;
  if (x >= 0x61 && x <= 0x66) return x - 0x57;
  if (x >= 0x41 && x <= 0x46) return x - 0x37;
  return -1;
}

/** Queues body bytes for the reader; stops reading the socket while the reader lags behind. */
function emit(conn: Conn, ex: Exchange, c: ReadableStreamDefaultController<Uint8Array>, b: Uint8Array): void {
  if (b.length === 0) return;
  c.enqueue(b);
  if (!ex.paused && (c.desiredSize ?? 1) <= 0) {
    ex.paused = true;
    conn.socket?.pause();
  }
}
