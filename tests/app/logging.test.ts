import { expect, test } from "bun:test";
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";
import { createLogger, redactSecrets } from "../../src/core/logging.ts";

test("secret fields are redacted at any of the first levels, in any case, Headers included", () => {
  const out = redactSecrets({
    requestId: "r1",
    headers: { Authorization: "Bearer sk-live", cookie: "s=1", accept: "*/*" },
    access_token: "at",
    nested: { deep: { refreshToken: "rt", keep: 1 } },
    list: [{ password: "pw" }],
    raw: new Headers({ "x-api-key": "k", "content-type": "application/json" }),
  });
  expect(out).toEqual({
    requestId: "r1",
    headers: { Authorization: "[redacted]", cookie: "[redacted]", accept: "*/*" },
    access_token: "[redacted]",
    nested: { deep: { refreshToken: "[redacted]", keep: 1 } },
    list: [{ password: "[redacted]" }],
    raw: { "x-api-key": "[redacted]", "content-type": "application/json" },
  });
});

test("an object without secrets is logged as it is, not copied", () => {
  const o = { requestId: "r", path: "/v1/responses", status: 200 };
  expect(redactSecrets(o)).toBe(o);
});

test("the logger applies it to every line", () => {
  let text = "";
  const sink = new Writable({
    write(chunk, _e, cb) {
      text += String(chunk);
      cb();
    },
  });
  const log = createLogger("info", sink);
  log.info({ token: "tok-secret-value", id_token: "idt", user: { apiKey: "sk-clb-x" } }, "hello");
  expect(text).not.toContain("tok-secret-value");
  expect(text).not.toContain('idt"');
  expect(text).not.toContain("sk-clb-x");
  expect(JSON.parse(text)).toMatchObject({
    msg: "hello",
    token: "[redacted]",
    user: { apiKey: "[redacted]" },
  });
});

test("the common log.info(obj, msg) line is exactly pino's own line (time aside), child bindings included", () => {
  const lines = (write: (log: Logger) => void, fast: boolean) => {
    let text = "";
    const sink = new Writable({
      write(chunk, _e, cb) {
        text += String(chunk);
        cb();
      },
    });
    const log = fast
      ? createLogger("info", sink)
      : pino(
          {
            level: "info",
            base: { service: "codex-lb" },
            timestamp: pino.stdTimeFunctions.isoTime,
            formatters: { level: (label: string) => ({ level: label }), log: redactSecrets },
          },
          sink,
        );
    write(log);
    // The time differs between two runs; everything else must not.
    return text.replace(/"time":"[^"]*"/g, '"time":"T"');
  };
  const cases: Record<string, unknown>[] = [
    {
      requestId: "r-1",
      method: "POST",
      path: "/backend-api/codex/responses",
      status: 200,
      errorCode: null,
      ttfbMs: 3,
      inputTokens: null,
    },
    {},
    { quote: 'a"b\\c', nl: "line\nnext\ttab\u0001", uni: "é ✓ 😀 \u2028", long: `${"x".repeat(60)}"` },
    { n: [1, -0, 1e21, 0.1, Number.NaN, Number.POSITIVE_INFINITY], nan: Number.NaN, inf: -Infinity, z: -0 },
    { nested: { a: { b: { c: { d: 1 } } } }, list: [{ x: 1 }, "s", null], when: new Date(0), yes: true },
    { skip: undefined, fn: () => 1, 'weird key"': 1, 10: "numeric key first" },
    {
      headers: new Headers({ authorization: "Bearer sk", accept: "*/*" }),
      token: "t",
      deep: { apiKey: "k" },
    },
  ];
  for (const c of cases) {
    const write = (log: Logger) => {
      log.info(c, "request");
      log.child({ component: "oauth" }).warn(c, 'm "quoted"');
    };
    expect(lines(write, true)).toBe(lines(write, false));
  }
  // Lines pino writes itself (an Error, an `err` field, a message with arguments) are unchanged too.
  const boom = new Error("boom");
  const others = (log: Logger) => {
    log.info({ err: boom, requestId: "r" }, "failed");
    log.info({ msg: "inner" }, "outer");
    log.info("just %s", "text");
    log.info({ big: 10n }, "bigint");
  };
  expect(lines(others, true)).toBe(lines(others, false));
});
