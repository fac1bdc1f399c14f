/**
 * `request.admit` fails closed: a handler that throws refuses the request with a JSON 500, whether it
 * throws at once or its promise rejects (the hook bus takes both the same way: logged with the
 * plugin's name, the run marked failed), and the handlers that decide normally still admit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Plugin } from "../../src/plugin-api.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
const broken: Plugin = {
  name: "tests.broken-admit",
  setup(ctx) {
    ctx.on("request.admit", (e) => {
      const how = e.headers.get("x-test-throw");
      if (how === "sync") throw new Error("thrown at once");
      if (how === "async") return Promise.reject(new Error("rejected later"));
      return undefined;
    });
  },
};

beforeAll(async () => {
  gw = await startGateway({ plugins: [broken] });
});
afterAll(async () => {
  await gw.stop();
});

const ask = (how: string | null) =>
  fetch(`${gw.url}/v1/models`, { headers: how ? { "x-test-throw": how } : {} });

describe("request.admit fails closed", () => {
  test.each([
    ["throws at once", "sync", "thrown at once"],
    ["rejects its promise", "async", "rejected later"],
  ])(
    "a handler that %s refuses the request with a JSON 500, logged once with its plugin",
    async (_, how, err) => {
      const before = gw.logs().filter((l) => l.msg === "hook handler threw").length;
      const res = await ask(how);
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: "server_error", message: "Request admission failed" });
      const threw = gw.logs().filter((l) => l.msg === "hook handler threw");
      expect(threw.length).toBe(before + 1);
      expect(threw.at(-1)).toMatchObject({ hook: "request.admit", plugin: "tests.broken-admit", err });
    },
  );

  test("the same handler deciding normally admits the request", async () => {
    const res = await ask(null);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { object: string }).object).toBe("list");
  });
});
