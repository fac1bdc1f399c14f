/**
 * Inputs that answered 500 (or 200 with a side effect, or Bun's HTML error page) on the old main.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { adminLogin, jsonInit } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.stop();
});

async function rawRequest(port: number, text: string): Promise<string> {
  let out = "";
  await new Promise<void>((resolve) => {
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(text);
        },
        data(_s, d) {
          out += new TextDecoder().decode(d);
        },
        close() {
          resolve();
        },
        error() {
          resolve();
        },
      },
    });
    setTimeout(resolve, 3000);
  });
  return out;
}

describe("malformed Host", () => {
  test.each(["a b", "[::1", "exa mple.com:99999"])("Host %p → one JSON 400, no HTML", async (host) => {
    const port = Number(new URL(gw.url).port);
    const before = gw.logText().length;
    const raw = await rawRequest(
      port,
      `GET /api/accounts HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    expect(raw).toStartWith("HTTP/1.1 400");
    expect(raw.toLowerCase()).toContain("content-type: application/json");
    expect(raw).not.toContain("<!doctype");
    expect(raw.length).toBeLessThan(1000);
    const body = JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)) as { error: { code: string } };
    expect(body.error.code).toBe("bad_request");
    await Bun.sleep(20);
    const lines = gw.logText().slice(before).trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThan(600);
  });
});

describe("500 → 4xx", () => {
  test.each([
    "/api/request-logs?limit=1.5",
    "/api/request-logs?offset=1.5",
    "/api/request-logs?offset=1e20",
    "/api/audit-logs?limit=1.5",
    "/api/audit-logs?offset=1e400",
  ])("GET %s is a 400", async (path) => {
    const res = await fetch(`${gw.url}${path}`);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string; param: string } };
    expect(error.code).toBe("validation_error");
    // The message and `param` name the query field (not "Invalid body").
    const name = new URL(path, gw.url).searchParams.keys().next().value!;
    expect(error.param).toBe(name);
    expect(error.message).toContain(`'${name}'`);
  });

  test("PUT /api/settings with a non-object body is a 400 that changes nothing", async () => {
    const before = (await (await fetch(`${gw.url}/api/settings`)).json()) as { version: number };
    for (const body of ["[]", "5", "null", '"x"', "true"]) {
      const res = await fetch(`${gw.url}/api/settings`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body,
      });
      expect(res.status).toBe(400);
    }
    const after = (await (await fetch(`${gw.url}/api/settings`)).json()) as { version: number };
    expect(after.version).toBe(before.version);
    const audits = await gw.running.store.db
      .selectFrom("audit_logs")
      .select("action")
      .where("action", "like", "settings%")
      .execute();
    expect(audits).toHaveLength(0);
  });

  test("PATCH /api/accounts/<over 200 chars> is a 400 without an audit row", async () => {
    const res = await fetch(
      `${gw.url}/api/accounts/${"a".repeat(201)}`,
      jsonInit("PATCH", { routingPolicy: "preserve" }),
    );
    expect(res.status).toBe(400);
    // 200 characters is a possible id: an unknown account, 404 (and no audit row either).
    const at = await fetch(
      `${gw.url}/api/accounts/${"a".repeat(200)}`,
      jsonInit("PATCH", { routingPolicy: "preserve" }),
    );
    expect(at.status).toBe(404);
    const audits = await gw.running.store.db
      .selectFrom("audit_logs")
      .select("action")
      .where("action", "=", "account.routing_policy")
      .execute();
    expect(audits).toHaveLength(0);
  });

  test("Cookie: codex_lb_session=% counts as no session (401), never a 500", async () => {
    const g = await startGateway();
    try {
      await adminLogin(g);
      for (const path of ["/api/accounts", "/api/auth/session"]) {
        const res = await fetch(`${g.url}${path}`, { headers: { cookie: "codex_lb_session=%" } });
        expect(res.status).toBeLessThan(500);
      }
      expect(
        (await fetch(`${g.url}/api/accounts`, { headers: { cookie: "codex_lb_session=%" } })).status,
      ).toBe(401);
      const s = await fetch(`${g.url}/api/auth/logout`, {
        method: "POST",
        headers: { cookie: "codex_lb_session=%E0%A4%A" },
      });
      expect(s.status).toBe(200);
    } finally {
      await g.stop();
    }
  });
});
