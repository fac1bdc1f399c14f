/**
 * Pure IP address handling: parsing and normalising IPv4/IPv6 addresses and CIDR ranges, matching,
 * and reading the client address from `X-Forwarded-For` / RFC 7239 `Forwarded` behind trusted
 * proxies. No I/O; every function here is covered by table-driven tests.
 *
 * @module
 */

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6). IPv4-mapped IPv6 is folded into IPv4. */
export interface Ip {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A parsed range: network bytes plus prefix length. A single address is a /32 or /128. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

const V4_PART = /^(0|[1-9][0-9]{0,2})$/;

function parseV4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!V4_PART.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): Uint8Array | null {
  if (s.length === 0 || s.length > 45) return null;
  let head = s;
  let tail4: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.slice(lastColon + 1).includes(".")) {
    tail4 = parseV4(s.slice(lastColon + 1));
    if (!tail4) return null;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.indexOf("::");
  if (dbl !== head.lastIndexOf("::")) return null;
  const groupsOf = (part: string): string[] | null => {
    if (part === "") return [];
    const g = part.split(":");
    return g.every((x) => /^[0-9a-fA-F]{1,4}$/.test(x)) ? g : null;
  };
  let groups: string[];
  if (dbl >= 0) {
    const left = groupsOf(head.slice(0, dbl));
    const right = groupsOf(head.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return null;
    groups = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  } else {
    const all = groupsOf(head);
    if (all?.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/**
 * Addresses seen lately (every request parses its peer's several times, and peers repeat): parsed
 * once. Bounded; forgotten all at once when full. The results are frozen (shared between callers).
 */
const parsedIps = new Map<string, Ip | null>();
const PARSED_IPS_MAX = 4096;
const formatted = new WeakMap<Ip, string>();

/** Parses an IPv4 or IPv6 address (no brackets, no port, no zone id); null when malformed. */
export function parseIp(input: string): Ip | null {
  const known = parsedIps.get(input);
  if (known !== undefined) return known;
  const ip = parseIpUncached(input);
  if (ip) Object.freeze(ip);
  if (parsedIps.size >= PARSED_IPS_MAX) parsedIps.clear();
  parsedIps.set(input, ip);
  return ip;
}

function parseIpUncached(input: string): Ip | null {
  const s = input.trim();
  if (s.includes(":")) {
    const b = parseV6(s);
    if (!b) return null;
    if (MAPPED_PREFIX.every((v, i) => b[i] === v)) return { family: 4, bytes: b.slice(12) };
    return { family: 6, bytes: b };
  }
  const b = parseV4(s);
  return b ? { family: 4, bytes: b } : null;
}

/** Canonical text of an address: dotted IPv4, or RFC 5952 compressed lowercase IPv6. */
export function formatIp(ip: Ip): string {
  let text = formatted.get(ip);
  if (text === undefined) {
    text = formatIpUncached(ip);
    formatted.set(ip, text);
  }
  return text;
}

function formatIpUncached(ip: Ip): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** The canonical form of an address string, or null when it is not an address. */
export function normalizeIp(input: string): string | null {
  const ip = parseIp(input);
  return ip ? formatIp(ip) : null;
}

/** Parses `addr` or `addr/prefix`. Host bits below the prefix must be zero (`10.0.0.1/8` is refused). */
export function parseCidr(input: string): Cidr | null {
  const s = input.trim();
  const slash = s.indexOf("/");
  const ip = parseIp(slash >= 0 ? s.slice(0, slash) : s);
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    prefix = Number(p);
    // An IPv4-mapped range written in IPv6 notation: its prefix counts the 96 mapped bits.
    if (ip.family === 4 && s.slice(0, slash).includes(":")) prefix -= 96;
    if (prefix < 0 || prefix > max) return null;
  }
  for (let bit = prefix; bit < max; bit++) {
    if ((ip.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return null;
  }
  return { family: ip.family, bytes: ip.bytes, prefix };
}

/** Canonical text of a range: a bare address for /32 and /128, else `addr/prefix`. */
export function formatCidr(c: Cidr): string {
  const addr = formatIp(c);
  return c.prefix === (c.family === 4 ? 32 : 128) ? addr : `${addr}/${c.prefix}`;
}

/** True when `ip` lies inside `range` (same family only). */
export function cidrContains(range: Cidr, ip: Ip): boolean {
  if (range.family !== ip.family) return false;
  const full = range.prefix >> 3;
  for (let i = 0; i < full; i++) if (range.bytes[i] !== ip.bytes[i]) return false;
  const rest = range.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (range.bytes[full]! & mask) === (ip.bytes[full]! & mask);
}

/** True when `ip` (text or parsed) is in any of `ranges`. */
export function inRanges(ranges: readonly Cidr[], ip: string | Ip | null): boolean {
  const parsed = typeof ip === "string" ? parseIp(ip) : ip;
  if (!parsed) return false;
  return ranges.some((r) => cidrContains(r, parsed));
}

const LOOPBACK = [parseCidr("127.0.0.0/8")!, parseCidr("::1")!];

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(ip: string | null): boolean {
  return ip !== null && inRanges(LOOPBACK, ip);
}
