import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jsonInit, localFetch, remoteFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

// The firewall guards the proxy surface. Requests carry a valid key (API-key auth on), so a
// request the firewall lets through reaches GET /v1/usage (200); a refused one gets 403.
async function setup(
  env: Record<string, string> = {},
): Promise<{ gw: TestGateway; auth: Record<string, string> }> {
  const gw = await startGateway({ env });
  // 127.0.0.1 may be a trusted proxy here (its callers are never local): admin calls come from ::1.
  const admin = (path: string, init: RequestInit) => localFetch(gw, path, init);
  await admin("/api/settings/access", jsonInit("PUT", { apiKeyAuthEnabled: true }));
  const { key } = (await (await admin("/api/api-keys", jsonInit("POST", { name: "fw" }))).json()) as {
    key: string;
  };
  const put = await admin(
    "/api/firewall",
    jsonInit("PUT", { entries: ["203.0.113.0/24", "2001:DB8::/32", "198.51.100.7"] }),
  );
  expect(put.status).toBe(200);
  return { gw, auth: { authorization: `Bearer ${key}` } };
}

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; type: string; message: string } }).error;
}

describe("firewall, direct clients (no trusted proxy)", () => {
  let gw: TestGateway;
  let auth: Record<string, string>;
  beforeAll(async () => {
    ({ gw, auth } = await setup());
  });
  afterAll(async () => {
    await gw.stop();
  });

  const cases: [string, string, number][] = [
    ["IPv4 inside a CIDR range", "203.0.113.99", 200],
    ["IPv4 listed exactly", "198.51.100.7", 200],
    ["IPv4 next to a listed one", "198.51.100.8", 403],
    ["IPv4 outside every range", "192.0.2.1", 403],
    ["IPv6 inside a range", "2001:db8:1::5", 200],
    ["IPv6 outside", "2001:db9::1", 403],
    ["IPv4-mapped IPv6 of a listed range", "::ffff:203.0.113.5", 200],
  ];
  test.each(cases)("%s (%s) → %d", async (_n, ip, status) => {
    const res = await remoteFetch(gw, "/v1/usage", { headers: auth }, ip);
    expect(res.status).toBe(status);
    if (status === 403) {
      expect(await errorOf(res)).toMatchObject({ code: "ip_not_allowed", type: "permission_error" });
    }
  });

  test("forwarding headers from an untrusted peer are ignored", async () => {
    const res = await remoteFetch(
      gw,
      "/v1/usage",
      { headers: { ...auth, "x-forwarded-for": "203.0.113.9" } },
      "192.0.2.1",
    );
    expect(res.status).toBe(403);
    // Over the real socket the peer is 127.0.0.1, which is not listed.
    const sock = await fetch(`${gw.url}/v1/usage`, {
      headers: { ...auth, "x-forwarded-for": "203.0.113.9" },
    });
    expect(sock.status).toBe(403);
  });

  test("a refusal is logged with the address and answered in the OpenAI envelope", async () => {
    const res = await remoteFetch(
      gw,
      "/v1/responses",
      { method: "POST", headers: { ...auth, "x-request-id": "fw-deny-1" } },
      "192.0.2.44",
    );
    expect((await errorOf(res)).message).toBe("Client address 192.0.2.44 is not allowed");
    await Bun.sleep(10);
    const lines = gw.logs().filter((l) => l.requestId === "fw-deny-1");
    expect(
      lines.some((l) => l.clientIp === "192.0.2.44" && l.msg === "firewall refused a client address"),
    ).toBe(true);
  });

  test("the admin surface is not behind the firewall", async () => {
    expect((await fetch(`${gw.url}/api/firewall`)).status).toBe(200);
  });

  test("an empty list allows everyone again", async () => {
    await fetch(`${gw.url}/api/firewall`, jsonInit("PUT", { entries: [] }));
    const listing = (await (await fetch(`${gw.url}/api/firewall`)).json()) as { mode: string };
    expect(listing.mode).toBe("allow_all");
    expect((await remoteFetch(gw, "/v1/usage", { headers: auth }, "192.0.2.1")).status).toBe(200);
  });
});

describe("firewall behind a trusted proxy (CODEX_LB_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8)", () => {
  let gw: TestGateway;
  let auth: Record<string, string>;
  beforeAll(async () => {
    ({ gw, auth } = await setup({ CODEX_LB_TRUSTED_PROXIES: "127.0.0.1,10.0.0.0/8" }));
  });
  afterAll(async () => {
    await gw.stop();
  });

  // Real socket: the peer is 127.0.0.1, a trusted proxy.
  const cases: [string, Record<string, string>, number][] = [
    ["XFF names an allowed client", { "x-forwarded-for": "203.0.113.9" }, 200],
    ["XFF names a refused client", { "x-forwarded-for": "192.0.2.1" }, 403],
    ["trusted hops are walked past", { "x-forwarded-for": "203.0.113.9, 10.1.2.3" }, 200],
    ["a spoofed leftmost entry is not believed", { "x-forwarded-for": "203.0.113.9, 192.0.2.1" }, 403],
    ["Forwarded is ignored (XFF is the configured header)", { forwarded: 'for="[2001:db8::1]:443"' }, 403],
    ["Forwarded cannot override XFF", { forwarded: "for=203.0.113.9", "x-forwarded-for": "192.0.2.1" }, 403],
    ["no header: the proxy itself (not listed)", {}, 403],
    ["malformed XFF fails closed", { "x-forwarded-for": "203.0.113.9, garbage" }, 403],
  ];
  test.each(cases)("%s → %d", async (_n, headers, status) => {
    const res = await fetch(`${gw.url}/v1/usage`, { headers: { ...auth, ...headers } });
    expect(res.status).toBe(status);
  });

  test("a malformed header is refused as an undeterminable address", async () => {
    const res = await fetch(`${gw.url}/v1/usage`, { headers: { ...auth, "x-forwarded-for": "1.2.3" } });
    expect((await errorOf(res)).message).toContain("could not be determined");
  });
});

describe("firewall behind a proxy that writes Forwarded (CODEX_LB_FORWARDED_HEADER=forwarded)", () => {
  let gw: TestGateway;
  let auth: Record<string, string>;
  beforeAll(async () => {
    ({ gw, auth } = await setup({
      CODEX_LB_TRUSTED_PROXIES: "127.0.0.1,10.0.0.0/8",
      CODEX_LB_FORWARDED_HEADER: "forwarded",
    }));
  });
  afterAll(async () => {
    await gw.stop();
  });

  const cases: [string, Record<string, string>, number][] = [
    ["Forwarded with quoted IPv6 and port", { forwarded: 'for="[2001:db8::1]:443";proto=https' }, 200],
    ["XFF is ignored", { "x-forwarded-for": "203.0.113.9" }, 403],
    ["XFF cannot override Forwarded", { forwarded: "for=192.0.2.1", "x-forwarded-for": "203.0.113.9" }, 403],
    ["malformed Forwarded (unquoted IPv6) fails closed", { forwarded: "for=[2001:db8::1]" }, 403],
    ["Forwarded for=unknown fails closed", { forwarded: "for=unknown" }, 403],
  ];
  test.each(cases)("%s → %d", async (_n, headers, status) => {
    const res = await fetch(`${gw.url}/v1/usage`, { headers: { ...auth, ...headers } });
    expect(res.status).toBe(status);
  });
});

describe("/api/firewall management", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw.stop();
  });

  test("add normalises, refuses duplicates and malformed entries; delete by any spelling; all audited", async () => {
    const add = await fetch(
      `${gw.url}/api/firewall/entries`,
      jsonInit("POST", { entry: "2001:0DB8:0:0::/48" }),
    );
    expect(add.status).toBe(201);
    expect(((await add.json()) as { entry: string }).entry).toBe("2001:db8::/48");
    const dup = await fetch(`${gw.url}/api/firewall/entries`, jsonInit("POST", { entry: "2001:db8::/48" }));
    expect(dup.status).toBe(409);
    for (const bad of ["10.0.0.1/8", "example.com", "10.0.0.0/40"]) {
      const res = await fetch(`${gw.url}/api/firewall/entries`, jsonInit("POST", { entry: bad }));
      expect(res.status).toBe(400);
      expect((await errorOf(res)).message).toContain(bad);
    }
    const badPut = await fetch(
      `${gw.url}/api/firewall`,
      jsonInit("PUT", { entries: ["10.0.0.0/8", "nope"] }),
    );
    expect(badPut.status).toBe(400);
    const listing = (await (await fetch(`${gw.url}/api/firewall`)).json()) as {
      mode: string;
      entries: { entry: string }[];
    };
    expect(listing).toMatchObject({ mode: "allowlist", entries: [{ entry: "2001:db8::/48" }] });
    const del = await fetch(`${gw.url}/api/firewall/entries?entry=${encodeURIComponent("2001:DB8::/48")}`, {
      method: "DELETE",
    });
    expect(del.status).toBe(200);
    const again = await fetch(`${gw.url}/api/firewall/entries?entry=${encodeURIComponent("2001:db8::/48")}`, {
      method: "DELETE",
    });
    expect(again.status).toBe(404);
    const actions = (await gw.running.store.db.selectFrom("audit_logs").select("action").execute()).map(
      (a) => a.action,
    );
    expect(actions).toEqual(["firewall.entry_added", "firewall.entry_removed"]);
  });
});

test("a bad CODEX_LB_TRUSTED_PROXIES entry stops start-up with the variable named", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-fw-"));
  try {
    await expect(
      startGateway({ dataDir, env: { CODEX_LB_TRUSTED_PROXIES: "10.0.0.0/8,proxy.local" } }),
    ).rejects.toThrow(/CODEX_LB_TRUSTED_PROXIES.*proxy\.local/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
