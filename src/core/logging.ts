/**
 * The gateway's logger: pino JSON lines on stdout. Secrets are redacted by path (headers,
 * token fields) so no Authorization header, cookie or token value reaches a log line.
 *
 * @module
 */
import { createHash } from "node:crypto";
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

function needsRedaction(v: unknown, depth: number): boolean {
  if (depth === 0 || v === null || typeof v !== "object") return false;
  if (v instanceof Headers) return true;
  for (const [k, x] of Object.entries(v)) {
    if (secret.has(k.toLowerCase()) || needsRedaction(x, depth - 1)) return true;
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

/** The process's stdout destination and whether it was closed (lines after that are dropped). */
const stdoutSinks = new WeakMap<Logger, { dest: ReturnType<typeof pino.destination>; closed: boolean }>();

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "codex-lb" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }), log: redactSecrets },
  };
  if (destination) return pino(options, destination);
  const dest = pino.destination({ dest: 1, sync: false });
  const sink = { dest, closed: false };
  // A line logged after closeLog (a request finishing during shutdown) is dropped, not thrown.
  const log = pino(options, { write: (line: string) => (sink.closed ? undefined : dest.write(line)) });
  stdoutSinks.set(log, sink);
  return log;
}

/**
 * Writes out buffered log lines and closes stdout's destination; call it last before the process
 * exits (an async destination would otherwise lose what it still buffers).
 */
export async function closeLog(log: Logger): Promise<void> {
  const sink = stdoutSinks.get(log);
  if (!sink || sink.closed) return;
  sink.closed = true;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    sink.dest.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    sink.dest.end();
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
