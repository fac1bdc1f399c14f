/**
 * The log's destination (`lineDestination`, what stdout gets): access lines are written behind in
 * batches, every other line at once after them, in order; nothing is lost at a graceful stop
 * (`closeLog`) or when the process exits. Real files and a real child process.
 */
import { afterAll, expect, test } from "bun:test";
import fs, { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ACCESS_LINES_BATCH,
  ACCESS_MESSAGE,
  closeLog,
  createLogger,
  lineDestination,
} from "../../src/core/logging.ts";

const dir = mkdtempSync(join(tmpdir(), "codex-lb-logdest-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function logToFile(level = "info") {
  const path = join(dir, `log-${files++}.jsonl`);
  const log = createLogger(level, lineDestination(path));
  const read = () => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  const msgs = () =>
    read()
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const line = JSON.parse(l) as { msg: string; n?: number };
        return line.msg + (line.n ?? "");
      });
  return { log, read, msgs };
}

/** Waits (polling, no timing asserted) until `ok()` holds. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await Bun.sleep(10);
}

test("access lines wait; the next other line writes them first, in the order logged", async () => {
  const { log, read, msgs } = logToFile();
  log.info({ requestId: "a", status: 200 }, "request");
  log.info({ requestId: "b", status: 200 }, "request");
  // Nothing written yet: the two access lines wait (the file's writes are asynchronous anyway).
  await Bun.sleep(0);
  expect(read()).toBe("");
  log.warn({ n: 1 }, "something");
  log.info({ requestId: "c", status: 200 }, "request");
  await until(() => msgs().includes("something1"));
  expect(msgs().slice(0, 3)).toEqual(["request", "request", "something1"]);
  await closeLog(log);
  expect(msgs()).toEqual(["request", "request", "something1", "request"]);
  const ids = read()
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { requestId?: string }).requestId ?? null);
  expect(ids).toEqual(["a", "b", null, "c"]);
});

test("waiting access lines are written without another line: by their delay, or once a batch is full", async () => {
  const alone = logToFile();
  alone.log.info({ requestId: "alone" }, "request");
  await until(() => alone.read().includes('"requestId":"alone"'));
  expect(alone.msgs()).toEqual(["request"]);

  const many = logToFile();
  const n = Math.ceil(ACCESS_LINES_BATCH / 60) + 1;
  for (let i = 0; i < n; i++) many.log.info({ requestId: `r${i}`, pad: "x".repeat(20) }, "request");
  await until(() => many.msgs().length > 0);
  expect(many.msgs().length).toBeGreaterThan(0);
  await closeLog(many.log);
  expect(many.msgs()).toEqual(Array.from({ length: n }, () => "request"));
  await closeLog(alone.log);
});

test("access lines of one busy stretch, 48 KB of them, wait as one batch: no file write until closed", async () => {
  // A descriptor (not a path) so the destination is open at once and could write at once.
  const path = join(dir, `log-${files++}.jsonl`);
  const fd = openSync(path, "w");
  const log = createLogger("info", lineDestination(fd));
  // The destination's file writes, counted (SonicBoom calls fs.write for each asynchronous write).
  let writes = 0;
  const write = fs.write;
  const counting = (...a: unknown[]) => {
    if (a[0] === fd) writes++;
    return (write as (...b: unknown[]) => void)(...a);
  };
  (fs as { write: unknown }).write = counting;
  try {
    const n = 160;
    for (let i = 0; i < n; i++) log.info({ requestId: `r${i}`, pad: "x".repeat(260) }, ACCESS_MESSAGE);
    // Each line is over 300 bytes, so the batch holds more than 48 KB, and nothing went to the file.
    expect(writes).toBe(0);
    await closeLog(log);
    const ids = readFileSync(path, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { requestId: string }).requestId);
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => `r${i}`));
    expect(writes).toBeGreaterThan(0);
  } finally {
    (fs as { write: unknown }).write = write;
  }
});

test("closeLog writes every waiting line; a line logged after it is dropped, not thrown", async () => {
  const { log, msgs } = logToFile();
  for (let i = 0; i < 5; i++) log.info({ requestId: `r${i}` }, "request");
  await closeLog(log);
  expect(msgs()).toEqual(["request", "request", "request", "request", "request"]);
  log.info({ requestId: "late" }, "request");
  log.warn({ n: 2 }, "late");
  expect(msgs()).toHaveLength(5);
});

test("a process that exits writes its waiting access lines (process.exit right after logging)", async () => {
  const script = join(dir, "exit.ts");
  await Bun.write(
    script,
    `import { createLogger } from ${JSON.stringify(join(import.meta.dir, "../../src/core/logging.ts"))};
const log = createLogger("info");
for (let i = 0; i < 3; i++) log.info({ requestId: "x" + i, status: 200 }, "request");
process.exit(0);
`,
  );
  const proc = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  const ids = out
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { requestId: string }).requestId);
  expect(ids).toEqual(["x0", "x1", "x2"]);
});

test("opening and closing destinations again and again adds no exit listener after the first", async () => {
  const counts: number[] = [];
  for (let i = 0; i < 5; i++) {
    // Each round empties the open destinations (closeLog) and fills them again.
    const { log, msgs } = logToFile();
    counts.push(process.listenerCount("exit"));
    // The pipeline's access message is the one the destination holds back and writes on close.
    log.info({ requestId: `r${i}`, status: 200 }, ACCESS_MESSAGE);
    await closeLog(log);
    expect(msgs()).toEqual([ACCESS_MESSAGE]);
  }
  expect(new Set(counts).size).toBe(1);
});

test("a log whose writes fail (a full disk) does not stop the process: it says so once on stderr and goes on", async () => {
  const logging = new URL("../../src/core/logging.ts", import.meta.url).pathname;
  // /dev/full fails every write with ENOSPC. A child process: without a listener the stream's
  // 'error' was thrown from its write callback, which stopped the process's work.
  const code = `
const { closeLog, createLogger, lineDestination } = await import(${JSON.stringify(logging)});
const log = createLogger("info", lineDestination("/dev/full"));
for (let i = 0; i < 50; i++) log.info({ i }, "one");
await Bun.sleep(20);
for (let i = 0; i < 50; i++) log.info({ i }, "two");
await Bun.sleep(20);
await closeLog(log);
console.log("STILL UP");
process.exit(0);
`;
  const child = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  const [out, err, exit] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  expect(out).toBe("STILL UP\n");
  expect(exit).toBe(0);
  expect(err.match(/writing the log failed \(ENOSPC/g)?.length).toBe(1);
}, 30_000);

test.each([
  ["process.exit(3)", "process.exit(3);", 3],
  ["the event loop running empty", "", 0],
])(
  "a process whose log fails ends at %s without closeLog",
  async (_how, tail, code) => {
    const logging = new URL("../../src/core/logging.ts", import.meta.url).pathname;
    // pino's own exit hook flushes every destination synchronously, and SonicBoom's synchronous
    // flush retries a failing write for ever: the process never ended (killed here after 10 s).
    const script = `
const { createLogger, lineDestination } = await import(${JSON.stringify(logging)});
const log = createLogger("info", lineDestination("/dev/full"));
for (let i = 0; i < 50; i++) log.info({ i }, "one");
await Bun.sleep(20);
log.info("after the failure");
${tail}
`;
    const child = Bun.spawn([process.execPath, "-e", script], {
      stdout: "ignore",
      stderr: "pipe",
      timeout: 10_000,
    });
    const [err, exit] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(child.signalCode).toBeNull();
    expect(exit).toBe(code);
    expect(err.match(/writing the log failed \(ENOSPC/g)?.length).toBe(1);
  },
  30_000,
);
