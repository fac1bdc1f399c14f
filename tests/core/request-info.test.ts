/**
 * Request state travels in typed contexts, not in side tables: the gateway hands each request's
 * facts (`RequestInfo`) to the route that serves it, the proxy pipeline inside its
 * `ProxyRequestContext`, a framework-dispatched route as `info` on its typed context. Checked at
 * grep level over the product code (no map keyed by Request comes back) and through a real gateway
 * (a route sees the peer and the request id `gateway.fetch` was given, each request its own).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Glob } from "bun";
import { type RequestInfo, requestInfo } from "../../src/core/request-info.ts";
import type { Plugin } from "../../src/plugin-host/api.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const root = resolve(import.meta.dir, "../..");

describe("no side table keyed by Request", () => {
  test("no (Weak)Map keyed by a Request or a body stream, no infoOf/attachInfo/setInfo, in src/ or plugins/", () => {
    const hits: string[] = [];
    let files = 0;
    for (const pattern of ["src/**/*.ts", "src/**/*.tsx", "plugins/**/*.ts"]) {
      for (const file of new Glob(pattern).scanSync({ cwd: root })) {
        files++;
        readFileSync(resolve(root, file), "utf8")
          .split("\n")
          .forEach((line, i) => {
            if (
              /\b(?:Weak)?Map\s*<\s*(?:Request|ReadableStream)\b/.test(line) ||
              /\b(?:infoOf|attachInfo|setInfo)\b/.test(line)
            )
              hits.push(`${file}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    expect(files).toBeGreaterThan(50);
    expect(hits).toEqual([]);
  });
});

describe("a framework-dispatched route gets the request's facts on its typed context", () => {
  let gw: TestGateway;
  /** A route that answers the facts it was given (a test plugin's HTTP route, under the admin API). */
  const facts: Plugin = {
    name: "test.request-facts",
    setup(ctx) {
      ctx.http.use(requestInfo).get("/api/test/request-facts", ({ info }) => ({
        peerIp: info.peerIp,
        clientIp: info.clientIp,
        requestId: info.requestId,
        authenticated: info.authenticated ?? false,
      }));
    },
  };
  beforeAll(async () => {
    gw = await startGateway({ plugins: [facts] });
  });
  afterAll(async () => {
    await gw.stop();
  });

  const ask = async (peerIp: string, requestId: string) => {
    const res = await gw.running.gateway.fetch(
      new Request(`${gw.url}/api/test/request-facts`, { headers: { "x-request-id": requestId } }),
      peerIp,
    );
    return { res, body: (await res.json()) as Partial<RequestInfo> };
  };

  test("the peer and request id given to gateway.fetch, and what admission learned", async () => {
    const { res, body } = await ask("127.0.0.1", "facts-one");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("facts-one");
    // No admin password yet: a loopback caller is let in (authenticated), a remote one is not.
    expect(body).toEqual({
      peerIp: "127.0.0.1",
      clientIp: "127.0.0.1",
      requestId: "facts-one",
      authenticated: true,
    });
    const remote = await ask("203.0.113.7", "facts-remote");
    expect(remote.res.status).toBe(401);
    expect(remote.res.headers.get("x-request-id")).toBe("facts-remote");
  });

  test("requests in flight together each see their own facts", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `facts-${i}`);
    const peers = ids.map((_, i) => (i % 2 === 0 ? "127.0.0.1" : "::1"));
    const answers = await Promise.all(ids.map((id, i) => ask(peers[i]!, id)));
    expect(answers.map((a) => [a.body.requestId, a.body.peerIp])).toEqual(
      ids.map((id, i) => [id, peers[i]!]),
    );
  });
});
