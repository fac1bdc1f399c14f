import { expect, test } from "bun:test";
import { Writable } from "node:stream";
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
