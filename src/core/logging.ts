/**
 * The gateway's logger: pino JSON lines on stdout. Secrets are redacted by path (headers,
 * token fields) so no Authorization header, cookie or token value reaches a log line.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { writeSync } from "node:fs";
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/** Field names whose values are never logged, wherever they appear (two levels deep). */
export const secretFields = [
  "authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "access_token",
  "refresh_token",
  "id_token",
  "accessToken",
  "refreshToken",
  "idToken",
  "password",
  "apiKey",
  "api_key",
  "token",
  "secret",
  "code_verifier",
] as const;

const secret = new Set<string>(secretFields.map((f) => f.toLowerCase()));
const CENSOR = "[redacted]";
/** How deep redaction looks into a log object (fields of fields of fields). */
const DEPTH = 4;

/** Whether a field name is secret, remembered per name (log lines repeat the same few names). */
const secretByKey = new Map<string, boolean>();
function isSecretKey(k: string): boolean {
  let v = secretByKey.get(k);
  if (v === undefined) {
    v = secret.has(k.toLowerCase());
    // Bounded: names can come from data (a headers object); past the bound, no memo.
    if (secretByKey.size < 4096) secretByKey.set(k, v);
  }
  return v;
}

function needsRedaction(v: unknown, depth: number): boolean {
  if (depth === 0 || v === null || typeof v !== "object") return false;
  if (v instanceof Headers) return true;
  const o = v as Record<string, unknown>;
  // The own enumerable string keys, as Object.entries gives them, without building the pairs.
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    if (isSecretKey(k)) return true;
    const x = o[k];
    if (x !== null && typeof x === "object" && needsRedaction(x, depth - 1)) return true;
  }
  return false;
}

function redactCopy(v: unknown, depth: number): unknown {
  if (depth === 0 || v === null || typeof v !== "object") return v;
  if (v instanceof Headers) return redactCopy(Object.fromEntries(v), depth);
  if (Array.isArray(v)) return v.map((x) => redactCopy(x, depth - 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    out[k] = secret.has(k.toLowerCase()) ? CENSOR : redactCopy(x, depth - 1);
  return out;
}

/**
 * Replaces the value of every secret field (any case, up to {@link DEPTH} levels, Headers included)
 * with `[redacted]`. One pass over the keys and no copy when nothing is secret: pino's path-based
 * redaction re-parsed its wildcard paths on every line and cost a sixth of the proxy's CPU.
 */
export function redactSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  return needsRedaction(obj, DEPTH) ? (redactCopy(obj, DEPTH) as Record<string, unknown>) : obj;
}

const { lsCacheSym, timeSym, chindingsSym, streamSym, needsMetadataGsym } = pino.symbols;

/** A pino logger's own state, read by {@link fastLine} (pino exports these symbols). */
type PinoInternals = Record<symbol, unknown>;
type Stream = DestinationStream & Record<symbol, unknown>;

/**
 * The line pino would write for `log.<level>(obj, msg)`, built with one `JSON.stringify` of the
 * (redacted) object instead of pino's field-by-field serialisation — a fifth of the cost, for the
 * access line of every request. Null when pino itself must write it: anything but a plain object
 * (an Error, an HTTP request), an `err` field (pino's error serializer) or a `msg` field, a
 * `toJSON`, a value `JSON.stringify` refuses (a BigInt, a cycle), a stream that wants metadata.
 * Same fields, same order (level, time, bindings, the object's fields, msg), same redaction.
 */
function fastLine(
  log: PinoInternals,
  obj: Record<string, unknown>,
  msg: string,
  level: number,
): string | null {
  if (Object.getPrototypeOf(obj) !== Object.prototype) return null;
  if ("err" in obj || "msg" in obj || typeof obj.toJSON === "function") return null;
  if ((log[streamSym] as Stream)[needsMetadataGsym] === true) return null;
  let fields: string;
  try {
    fields = JSON.stringify(redactSecrets(obj));
  } catch {
    return null;
  }
  const levelField = (log[lsCacheSym] as Record<number, string>)[level];
  if (levelField === undefined) return null;
  const time = (log[timeSym] as (this: PinoInternals) => string).call(log);
  return `${levelField}${time}${log[chindingsSym] as string}${fields.length > 2 ? `,${fields.slice(1, -1)}` : ""},"msg":${JSON.stringify(msg)}}\n`;
}

/** pino's `logMethod` hook: the common `log.info({...}, "message")` goes through {@link fastLine}. */
function logMethod(
  this: Logger,
  args: Parameters<Logger["info"]>,
  method: (...a: Parameters<Logger["info"]>) => void,
  level: number,
): void {
  if (args.length === 2 && typeof args[1] === "string") {
    const obj = args[0];
    if (obj !== null && typeof obj === "object") {
      const internals = this as unknown as PinoInternals;
      const line = fastLine(internals, obj as Record<string, unknown>, args[1], level);
      if (line !== null) {
        (internals[streamSym] as Stream).write(line);
        return;
      }
    }
  }
  method.apply(this, args);
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "codex-lb" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }), log: redactSecrets },
    hooks: { logMethod },
  };
  return pino(options, destination ?? lineDestination(1));
}

/**
 * Access lines (`"msg":"request"`, one per request) wait at most this long before they are written
 * (see {@link lineDestination}).
 */
export const ACCESS_LINES_DELAY_MS = 100;
/**
 * …or until about this many bytes of them wait (about 150 access lines; the size of a Linux pipe's
 * buffer). Each batch is one asynchronous file write, a hand-off to another thread and back: at 4 KB
 * (about 10 lines) that hand-off cost about 12 µs of CPU per request at 64 connections
 * (`PAIR_ROUNDS=6 PAIR_SECONDS=6 bun scripts/bench-c64-pair.ts`, 4 KB against 64 KB: −19, −13, −20,
 * −3, −13, −6), out of the 19 µs the whole access line cost then.
 */
export const ACCESS_LINES_BATCH = 65536;
/**
 * The message of an access line (one per request, `log.info(fields, ACCESS_MESSAGE)`): what makes a
 * line one for {@link lineDestination}, which writes access lines behind in batches.
 */
export const ACCESS_MESSAGE = "request";
/** How every access line ends, whichever way it was built (`fastLine` or pino's own serialisation). */
const ACCESS_TAIL = `"msg":${JSON.stringify(ACCESS_MESSAGE)}}\n`;

/** A {@link lineDestination}'s state: its file, the access lines waiting, whether it was closed. */
interface LineSink {
  readonly dest: ReturnType<typeof pino.destination>;
  pending: string;
  timer: ReturnType<typeof setTimeout> | null;
  closed: boolean;
  /** The last write failed (none succeeded since): the exit does not try again (see {@link writeOnExit}). */
  failing: boolean;
}

/** At most this many bytes of log lines wait in a destination while its writes fail (16 MiB). */
export const LOG_BUFFER_MAX = 16 * 1024 * 1024;

/** The sink of each destination made by {@link lineDestination} (what {@link closeLog} closes). */
const lineSinks = new WeakMap<object, LineSink>();
/** Sinks not closed yet: what is still waiting is written synchronously if the process exits. */
const openSinks = new Set<LineSink>();
/** Whether {@link writeOnExit} listens to the process's `exit` (it writes every open sink). */
let exitHooked = false;

function writePending(sink: LineSink): void {
  if (sink.timer !== null) {
    clearTimeout(sink.timer);
    sink.timer = null;
  }
  if (sink.pending === "") return;
  const lines = sink.pending;
  sink.pending = "";
  sink.dest.write(lines);
}

/**
 * The log's destination: `dest` (a file descriptor, 1 = stdout, or a path) written asynchronously.
 * Access lines are written behind, in batches: at most {@link ACCESS_LINES_DELAY_MS} after the first
 * one waiting, or once about {@link ACCESS_LINES_BATCH} bytes of them wait. One write per line cost
 * a hand-off to a thread and a wake-up of the event loop per request (about 90–150 µs of CPU per
 * request at one connection, `bun /tmp` A/B of `scripts/bench.ts gateway`). Every other line is
 * written at once, after the access lines waiting (the order of lines is kept). {@link closeLog}
 * writes what waits; so does a process that exits (`process.exit`, the end of the event loop),
 * except the one asynchronous write in flight then (the exit does not wait for its thread, and
 * SonicBoom's `flushSync` does not redo it: that could write its lines twice), which may be lost; a
 * process killed outright (`kill -9`) loses the access lines of its last 100 ms.
 */
export function lineDestination(dest: number | string): DestinationStream {
  const sink: LineSink = {
    // Bounded: while writes fail, lines beyond this are dropped, not kept.
    dest: pino.destination({ dest, sync: false, maxLength: LOG_BUFFER_MAX }),
    pending: "",
    timer: null,
    closed: false,
    failing: false,
  };
  // A failed write (a full disk, a closed pipe) is not the gateway's end: without a listener the
  // stream's 'error' would be thrown from its write callback and stop the process. Said once on
  // stderr (unless the log is stderr); the lines wait (up to LOG_BUFFER_MAX) and are written with
  // the next write that succeeds (checked on a 64 KB tmpfs filled, then freed: every line arrived).
  let told = false;
  sink.dest.on("write", () => {
    sink.failing = false;
  });
  sink.dest.on("error", (e: Error) => {
    sink.failing = true;
    if (told || dest === 2) return;
    told = true;
    try {
      writeSync(
        2,
        `codex-lb: writing the log failed (${e.message}); lines wait (up to 16 MiB, later ones are dropped) until writes succeed again\n`,
      );
    } catch {
      // No stderr either: nothing more to tell.
    }
  });
  const flush = () => writePending(sink);
  const stream: DestinationStream = {
    write(line: string) {
      // A line logged after closeLog (a request finishing during shutdown) is dropped, not thrown.
      if (sink.closed) return;
      if (line.endsWith(ACCESS_TAIL)) {
        sink.pending += line;
        if (sink.pending.length >= ACCESS_LINES_BATCH) flush();
        else if (sink.timer === null) {
          sink.timer = setTimeout(flush, ACCESS_LINES_DELAY_MS);
          // Waiting lines never keep the process alive: its exit writes them.
          sink.timer.unref();
        }
        return;
      }
      if (sink.pending === "") sink.dest.write(line);
      else {
        sink.pending += line;
        writePending(sink);
      }
    },
  };
  lineSinks.set(stream, sink);
  // Once per process, however often the open sinks empty (closeLog) and fill again.
  if (!exitHooked) {
    exitHooked = true;
    // First among the exit listeners: pino registered its own (a synchronous flush of every
    // destination) when the destination above was made, and that flush never returns on a
    // destination whose writes fail; this one gives such destinations up before it runs.
    process.prependListener("exit", writeOnExit);
  }
  openSinks.add(sink);
  return stream;
}

/**
 * At the process's exit (no asynchronous write completes any more): what the destination still
 * queues, then the access lines waiting, written synchronously.
 */
function writeOnExit(): void {
  for (const sink of openSinks) {
    try {
      if (sink.timer !== null) clearTimeout(sink.timer);
      // SonicBoom's synchronous flush retries a failing write for ever (a full disk): the exit
      // would never come. Lines of a destination that fails are dropped instead, and the
      // destination is destroyed, so pino's own exit hook (which skips destroyed ones) does not
      // flush it either.
      if (sink.failing) {
        sink.dest.destroy();
        continue;
      }
      sink.dest.flushSync();
      if (sink.pending !== "") writeSync((sink.dest as unknown as { fd: number }).fd, sink.pending);
      sink.pending = "";
    } catch {
      // Nothing more can be done at exit (stdout closed, or the destination not open yet).
    }
  }
}

/**
 * Writes out waiting and buffered log lines and closes the logger's destination (one made by
 * {@link lineDestination}); call it last before the process exits.
 */
export async function closeLog(log: Logger): Promise<void> {
  const sink = lineSinks.get((log as unknown as PinoInternals)[streamSym] as object);
  if (!sink || sink.closed) return;
  writePending(sink);
  sink.closed = true;
  openSinks.delete(sink);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    sink.dest.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    // A destination whose writes fail is given up: pino's own exit hook would otherwise retry its
    // lines synchronously for ever (SonicBoom's `flushSync` retries any error), and the process
    // would never exit.
    if (sink.failing) sink.dest.destroy();
    else sink.dest.end();
  });
}

const emailHashes = new Map<string, string>();

/**
 * A stable, short label for an account's email in log lines: the first 12 hex digits of its
 * SHA-256 (lower-cased), so lines of one account can be grepped together without the address.
 */
export function emailHash(email: string | null): string | null {
  if (!email) return null;
  let h = emailHashes.get(email);
  if (h === undefined) {
    h = createHash("sha256").update(email.trim().toLowerCase()).digest("hex").slice(0, 12);
    if (emailHashes.size > 10_000) emailHashes.clear();
    emailHashes.set(email, h);
  }
  return h;
}
