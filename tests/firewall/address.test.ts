import { describe, expect, test } from "bun:test";
import { cidrContains, isLoopback, normalizeIp, parseCidr, parseIp } from "../../src/core/address.ts";
import {
  parseForwarded,
  parseTrustedProxies,
  parseXForwardedFor,
  resolveClientIp,
} from "../../src/firewall/forwarded.ts";
import { normalizeEntry } from "../../src/firewall/store.ts";

describe("normalizeIp", () => {
  const cases: [string, string | null][] = [
    ["192.0.2.1", "192.0.2.1"],
    [" 10.0.0.255 ", "10.0.0.255"],
    ["0.0.0.0", "0.0.0.0"],
    ["256.1.1.1", null],
    ["1.2.3", null],
    ["01.2.3.4", null],
    ["1.2.3.4.5", null],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["fe80:0:0:0:1:0:0:0", "fe80::1:0:0:0"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::ffff:192.0.2.9", "192.0.2.9"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["1::2::3", null],
    ["12345::1", null],
    ["fe80::1%eth0", null],
    ["[::1]", null],
    ["", null],
    ["example.com", null],
  ];
  test.each(cases)("%p → %p", (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });
});

describe("parseCidr / normalizeEntry", () => {
  const cases: [string, string | null][] = [
    ["10.0.0.0/8", "10.0.0.0/8"],
    ["10.0.0.1/8", null],
    ["10.1.2.3", "10.1.2.3"],
    ["10.1.2.3/32", "10.1.2.3"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["10.0.0.0/33", null],
    ["10.0.0.0/-1", null],
    ["10.0.0.0/08", null],
    ["2001:db8::/32", "2001:db8::/32"],
    ["2001:db8::1/128", "2001:db8::1"],
    ["2001:db8::/129", null],
    ["::ffff:10.0.0.0/104", "10.0.0.0/8"],
    ["nonsense/8", null],
  ];
  test.each(cases)("%p → %p", (input, expected) => {
    expect(normalizeEntry(input)).toBe(expected);
  });
});

describe("cidrContains", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/8", "10.255.1.2", true],
    ["10.0.0.0/8", "11.0.0.1", false],
    ["192.168.4.0/22", "192.168.7.255", true],
    ["192.168.4.0/22", "192.168.8.0", false],
    ["0.0.0.0/0", "198.51.100.1", true],
    ["198.51.100.7", "198.51.100.7", true],
    ["198.51.100.7", "198.51.100.8", false],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::1", false],
    ["2001:db8::/33", "2001:db8:8000::1", false],
    ["10.0.0.0/8", "::ffff:10.1.1.1", true],
    ["::/0", "10.0.0.1", false],
  ];
  test.each(cases)("%p contains %p = %p", (range, ip, expected) => {
    expect(cidrContains(parseCidr(range)!, parseIp(ip)!)).toBe(expected);
  });
});

describe("isLoopback", () => {
  const cases: [string | null, boolean][] = [
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["::1", true],
    ["::ffff:127.0.0.1", true],
    ["10.0.0.1", false],
    ["::2", false],
    [null, false],
    ["garbage", false],
  ];
  test.each(cases)("%p → %p", (ip, expected) => {
    expect(isLoopback(ip)).toBe(expected);
  });
});

const show = (hops: { family: number; bytes: Uint8Array }[] | null) =>
  hops === null
    ? null
    : hops.map((h) => normalizeIp(h.family === 4 ? Array.from(h.bytes).join(".") : fmt6(h.bytes)));
function fmt6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return g.join(":");
}

describe("parseXForwardedFor", () => {
  const cases: [string, string[] | null][] = [
    ["203.0.113.9", ["203.0.113.9"]],
    ["203.0.113.9, 10.0.0.1", ["203.0.113.9", "10.0.0.1"]],
    ["203.0.113.9:5555", ["203.0.113.9"]],
    ["2001:db8::1", ["2001:db8::1"]],
    ["[2001:db8::1]:443", ["2001:db8::1"]],
    ["203.0.113.9,,10.0.0.1", null],
    ["unknown", null],
    ["203.0.113.9, evil", null],
    ["", null],
  ];
  test.each(cases)("%p → %p", (header, expected) => {
    expect(show(parseXForwardedFor(header))).toEqual(expected);
  });
});

describe("parseForwarded (RFC 7239)", () => {
  const cases: [string, string[] | null][] = [
    ["for=192.0.2.60", ["192.0.2.60"]],
    ["for=192.0.2.60;proto=http;by=203.0.113.43", ["192.0.2.60"]],
    ['for="192.0.2.60:8080"', ["192.0.2.60"]],
    ['For="[2001:db8:cafe::17]:4711"', ["2001:db8:cafe::17"]],
    ['for="[2001:db8::1]"', ["2001:db8::1"]],
    ["for=192.0.2.43, for=198.51.100.17", ["192.0.2.43", "198.51.100.17"]],
    ['for=192.0.2.43;host="a,b", for=10.0.0.1', ["192.0.2.43", "10.0.0.1"]],
    ["for=[2001:db8::1]", null],
    ['for="2001:db8::1"', null],
    ["for=192.0.2.60:8080", null],
    ['for="192.0.2.60:99999"', null],
    ["for=unknown", null],
    ["for=_hidden", null],
    ["for=192.0.2.1;for=192.0.2.2", null],
    ["proto=https", null],
    ["for", null],
    ['for="192.0.2.1', null],
    ["for=192.0.2.1,", null],
  ];
  test.each(cases)("%p → %p", (header, expected) => {
    expect(show(parseForwarded(header))).toEqual(expected);
  });
});

describe("resolveClientIp", () => {
  const trusted = parseTrustedProxies(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"]);
  const cases: [string, string | null, Record<string, string>, string | null][] = [
    ["untrusted peer: headers ignored", "198.51.100.1", { "x-forwarded-for": "203.0.113.9" }, "198.51.100.1"],
    ["trusted peer without headers", "127.0.0.1", {}, "127.0.0.1"],
    ["trusted peer with XFF", "127.0.0.1", { "x-forwarded-for": "203.0.113.9" }, "203.0.113.9"],
    ["walks past trusted hops", "10.0.0.2", { "x-forwarded-for": "203.0.113.9, 10.9.9.9" }, "203.0.113.9"],
    [
      "a spoofed leftmost hop is not believed",
      "127.0.0.1",
      { "x-forwarded-for": "1.1.1.1, 203.0.113.9" },
      "203.0.113.9",
    ],
    ["all hops trusted → leftmost", "127.0.0.1", { "x-forwarded-for": "10.0.0.7, 10.0.0.8" }, "10.0.0.7"],
    [
      "only the configured header (XFF) is read: Forwarded is ignored",
      "127.0.0.1",
      { forwarded: "for=192.0.2.60", "x-forwarded-for": "1.1.1.1" },
      "1.1.1.1",
    ],
    ["Forwarded alone is not believed by default", "127.0.0.1", { forwarded: "for=127.0.0.1" }, "127.0.0.1"],
    ["malformed XFF fails closed", "127.0.0.1", { "x-forwarded-for": "not-an-ip" }, null],
    ["unknown peer", null, { "x-forwarded-for": "203.0.113.9" }, null],
    ["IPv4-mapped peer normalised", "::ffff:198.51.100.1", {}, "198.51.100.1"],
  ];
  test.each(cases)("%s", (_name, peer, headers, expected) => {
    expect(resolveClientIp(peer, new Headers(headers), trusted)).toBe(expected);
  });

  test("CODEX_LB_FORWARDED_HEADER=forwarded reads Forwarded only", () => {
    const h = (v: Record<string, string>) => new Headers(v);
    const peer = "2001:db8:ffff::1";
    expect(resolveClientIp(peer, h({ forwarded: 'for="[2001:db8::5]:443"' }), trusted, "forwarded")).toBe(
      "2001:db8::5",
    );
    expect(resolveClientIp("127.0.0.1", h({ forwarded: "for=[2001:db8::1]" }), trusted, "forwarded")).toBe(
      null,
    );
    expect(
      resolveClientIp(
        "127.0.0.1",
        h({ "x-forwarded-for": "127.0.0.1", forwarded: "for=192.0.2.60" }),
        trusted,
        "forwarded",
      ),
    ).toBe("192.0.2.60");
  });

  test("CODEX_LB_FORWARDED_HEADER=x-real-ip reads X-Real-IP only", () => {
    const headers = new Headers({ "x-real-ip": "192.0.2.61", "x-forwarded-for": "127.0.0.1" });
    expect(resolveClientIp("127.0.0.1", headers, trusted, "x-real-ip")).toBe("192.0.2.61");
  });

  test("a bad CODEX_LB_TRUSTED_PROXIES entry is refused by name", () => {
    expect(() => parseTrustedProxies(["10.0.0.0/8", "proxy.local"])).toThrow(/proxy\.local/);
  });
});
