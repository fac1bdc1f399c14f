/**
 * `bun scripts/bench-logging.ts`: the CPU cost of one access line (`log.info({...}, "request")`, the
 * fields `src/proxy/pipeline.ts` logs for every proxied request), through the gateway's logger
 * (`createLogger`: the one-`JSON.stringify` line) and through plain pino with the same options
 * (pino's own field-by-field line, what the gateway used before), each to a destination that drops
 * the line (the line's building alone) and to an async `/dev/null` pino destination (building and
 * writing). Interleaved `LOG_ROUNDS` (default 5) times, `LOG_LINES` (default 100,000) lines each;
 * prints the median µs of CPU per line (`process.cpuUsage`).
 *
 * @module
 */
import pino, { type DestinationStream, type Logger } from "pino";
import { createLogger, redactSecrets } from "../src/core/logging.ts";
import { envNumber } from "./bench-env.ts";

const ROUNDS = envNumber("LOG_ROUNDS", 5);
const LINES = envNumber("LOG_LINES", 100_000);

/** The access line's fields (as in src/proxy/pipeline.ts's settle step), varying per line. */
const fields = (i: number) => ({
  requestId: `0f1e2d3c-4b5a-6978-8796-${String(i).padStart(12, "0")}`,
  method: "POST",
  path: "/backend-api/codex/responses",
  endpoint: "codex",
  kind: "response",
  model: "gpt-5.2",
  accountId: "acc_1",
  account: "a1b2c3d4e5f6",
  apiKeyId: "key_1",
  status: 200,
  outcome: "success",
  errorCode: null,
  attempts: 1,
  ttfbMs: 3,
  ms: i % 50,
  inputTokens: 12,
  cachedInputTokens: 0,
  outputTokens: 30,
  reasoningTokens: null,
});

const plainPino = (dest: DestinationStream): Logger =>
  pino(
    {
      level: "info",
      base: { service: "codex-lb" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }), log: redactSecrets },
    },
    dest,
  );
const dropped = (): DestinationStream => ({ write() {} });
const devNull = () => pino.destination({ dest: "/dev/null", sync: false });

const loggers: Record<string, Logger> = {
  "gateway logger, line dropped": createLogger("info", dropped()),
  "plain pino, line dropped": plainPino(dropped()),
  "gateway logger, /dev/null": createLogger("info", devNull()),
  "plain pino, /dev/null": plainPino(devNull()),
};

const cpu = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const results = new Map<string, number[]>();
for (const log of Object.values(loggers)) for (let i = 0; i < 20_000; i++) log.info(fields(i), "request");
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, log] of Object.entries(loggers)) {
    const c0 = cpu();
    for (let i = 0; i < LINES; i++) log.info(fields(i), "request");
    results.set(name, [...(results.get(name) ?? []), (cpu() - c0) / LINES]);
    // Let the async destinations write out what they hold before the next cell.
    await Bun.sleep(50);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, xs] of results)
  console.log(`${name.padEnd(30)} ${median(xs).toFixed(2).padStart(6)} µs/line`);
console.log(`\n${ROUNDS} rounds × ${LINES} lines, interleaved; CPU from process.cpuUsage`);
