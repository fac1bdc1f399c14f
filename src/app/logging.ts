/**
 * The gateway's logger: pino JSON lines on stdout. Secrets are redacted by path (headers,
 * token fields) so no Authorization header, cookie or token value reaches a log line.
 *
 * @module
 */
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

const redactPaths = secretFields.flatMap((f) => {
  const k = /^[A-Za-z_$][\w$]*$/.test(f) ? f : `["${f}"]`;
  const dot = k.startsWith("[") ? k : `.${k}`;
  return [k.startsWith("[") ? k : f, `*${dot}`, `*.*${dot}`];
});

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "codex-lb" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Writes out buffered log lines and closes the destination; call it last before the process exits
 * (an async destination would otherwise lose what it still buffers).
 */
export async function closeLog(log: Logger): Promise<void> {
  const stream = (log as unknown as Record<symbol, NodeJS.WritableStream & { flushSync?: () => void }>)[
    pino.symbols.streamSym
  ];
  if (!stream || typeof stream.end !== "function") return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    stream.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    stream.end();
  });
}
