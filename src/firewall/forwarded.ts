/**
 * The one function that decides a request's client address: the socket peer, or — only when the
 * peer is a trusted proxy — the address named by the one configured forwarding header, walking
 * hops right to left past further trusted proxies. A malformed header from a trusted proxy yields
 * null (fail closed: not local, not on any allowlist). Used by the firewall, the admin locality
 * check and the API-key loopback policy.
 *
 * @module
 */
import { type Cidr, formatIp, type Ip, inRanges, parseCidr, parseIp } from "../core/address.ts";

/** Parses the comma-joined `X-Forwarded-For` values into hops (left = client); null when malformed. */
export function parseXForwardedFor(value: string): Ip[] | null {
  const hops: Ip[] = [];
  for (const raw of value.split(",")) {
    let s = raw.trim();
    if (s === "") return null;
    const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
    if (bracket) s = bracket[1]!;
    else if (/^\d+\.\d+\.\d+\.\d+:\d{1,5}$/.test(s)) s = s.slice(0, s.lastIndexOf(":"));
    const ip = parseIp(s);
    if (!ip) return null;
    hops.push(ip);
  }
  return hops;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Splits on `sep` outside double quotes; null on an unterminated quote. */
function splitQuoted(s: string, sep: string): string[] | null {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted && c === "\\") {
      cur += c + (s[i + 1] ?? "");
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === sep && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (quoted) return null;
  out.push(cur);
  return out;
}

/** One `for=` node: `1.2.3.4`, `"1.2.3.4:80"`, `"[2001:db8::1]"`, `"[2001:db8::1]:443"`. */
function parseNode(raw: string): Ip | null {
  let v = raw;
  const quoted = v.startsWith('"');
  if (quoted) {
    if (v.length < 2 || !v.endsWith('"')) return null;
    v = v.slice(1, -1).replace(/\\(.)/g, "$1");
  } else if (!TOKEN.test(v)) return null;
  let host = v;
  let port: string | null = null;
  if (v.startsWith("[")) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(v);
    if (!m) return null;
    host = m[1]!;
    port = m[2] ?? null;
    if (!host.includes(":")) return null;
  } else {
    const colon = v.indexOf(":");
    if (colon >= 0) {
      // An unbracketed IPv6 address is not allowed; a port after IPv4 is.
      if (v.indexOf(":", colon + 1) >= 0) return null;
      host = v.slice(0, colon);
      port = v.slice(colon + 1);
    }
    if (host.includes(":")) return null;
  }
  // A port (or a bracketed address) needs quotes: `:` and `[` are not token characters.
  if ((port !== null || v.startsWith("[")) && !quoted) return null;
  if (port !== null && !(/^\d{1,5}$/.test(port) && Number(port) <= 65535)) return null;
  // `unknown` and obfuscated identifiers (`_hidden`) name no address: refuse.
  return parseIp(host);
}

/** Parses the comma-joined `Forwarded` values into the `for=` hops; null when malformed. */
export function parseForwarded(value: string): Ip[] | null {
  const elements = splitQuoted(value, ",");
  if (!elements) return null;
  const hops: Ip[] = [];
  for (const element of elements) {
    const pairs = splitQuoted(element, ";");
    if (!pairs) return null;
    const seen = new Set<string>();
    let node: Ip | null = null;
    for (const pair of pairs) {
      const p = pair.trim();
      const eq = p.indexOf("=");
      if (eq <= 0) return null;
      const name = p.slice(0, eq).toLowerCase();
      if (!TOKEN.test(name) || seen.has(name)) return null;
      seen.add(name);
      const val = p.slice(eq + 1);
      if (val === "") return null;
      if (name === "for") {
        node = parseNode(val);
        if (!node) return null;
      } else if (!val.startsWith('"') && !TOKEN.test(val)) return null;
    }
    if (!node) return null;
    hops.push(node);
  }
  return hops;
}

/** Parses `CODEX_LB_TRUSTED_PROXIES` entries; throws naming the first bad one. */
export function parseTrustedProxies(entries: readonly string[]): Cidr[] {
  return entries.map((e) => {
    const c = parseCidr(e);
    if (!c) throw new Error(`${JSON.stringify(e)} is not an IP address or CIDR range`);
    return c;
  });
}

function joinedHeader(headers: Headers, name: string): string | null {
  const v = headers.get(name);
  return v === null || v.trim() === "" ? null : v;
}

/** The forwarding header a trusted proxy writes (`CODEX_LB_FORWARDED_HEADER`). */
export type ForwardedHeader = "x-forwarded-for" | "forwarded" | "x-real-ip";

/**
 * The client's address. From an untrusted (or unknown) peer: the peer itself, whatever headers it
 * sends. From a trusted peer: the address named by `header` — the one header the operator says the
 * proxy writes; every other forwarding header is ignored, never believed (a proxy that appends
 * `X-Forwarded-For` may pass a client's own `Forwarded` through). Hops are walked right to left and
 * the first one that is not a trusted proxy is the client (all trusted → the leftmost). Malformed →
 * null. Without the header: the peer (such a request is never "local", see `isLocalRequest`).
 */
export function resolveClientIp(
  peerIp: string | null,
  headers: Headers,
  trusted: readonly Cidr[],
  header: ForwardedHeader = "x-forwarded-for",
): string | null {
  const peer = peerIp === null ? null : parseIp(peerIp);
  if (!peer) return null;
  if (!inRanges(trusted, peer)) return formatIp(peer);
  const value = joinedHeader(headers, header);
  if (value === null) return formatIp(peer);
  const hops = header === "forwarded" ? parseForwarded(value) : parseXForwardedFor(value);
  if (!hops || hops.length === 0) return null;
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!inRanges(trusted, hops[i]!)) return formatIp(hops[i]!);
  }
  return formatIp(hops[0]!);
}

/** Headers that claim to name the original client; any of them on a request means "not local". */
export const clientIdentityHeaders = [
  "forwarded",
  "x-forwarded-for",
  "x-real-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "x-client-ip",
  "x-cluster-client-ip",
  "fastly-client-ip",
] as const;
