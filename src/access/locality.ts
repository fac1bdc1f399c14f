/**
 * "Is this request from this machine?" — the decision behind keyless proxy use and password-less
 * admin use. The exact rule (docs/access.md, "Threat model"), all four must hold:
 * 1. the socket peer is a loopback address;
 * 2. the peer is NOT a trusted proxy (`CODEX_LB_TRUSTED_PROXIES`): whatever a proxy relays comes
 *    from elsewhere, with or without a forwarding header — so a same-host proxy never makes its
 *    callers local, even when it adds no header;
 * 3. the request carries no forwarding header of any kind (`Forwarded`, `X-Forwarded-For`,
 *    `X-Real-IP`, ...): an unlisted proxy on this machine that adds one makes its callers remote;
 * 4. the URL's host is a loopback name (`localhost`, `127.0.0.1`, `[::1]`): a DNS-rebinding page in a
 *    browser reaches 127.0.0.1 with a foreign Host and is refused.
 *
 * @module
 */
import { type Cidr, inRanges, isLoopback } from "../core/address.ts";
import { clientIdentityHeaders } from "../firewall/forwarded.ts";

const LOCAL_HOSTNAMES = new Set(["localhost", "::1", "[::1]"]);

/** True when the URL's host names this machine's loopback interface. */
export function isLoopbackHost(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  return LOCAL_HOSTNAMES.has(host) || isLoopback(host.replace(/^\[|\]$/g, ""));
}

export function isLocalRequest(opts: {
  readonly peerIp: string | null;
  readonly headers: Headers;
  readonly url: URL;
  readonly trustedProxies: readonly Cidr[];
}): boolean {
  const { peerIp, headers, url, trustedProxies } = opts;
  if (!isLoopback(peerIp)) return false;
  if (inRanges(trustedProxies, peerIp)) return false;
  for (const h of clientIdentityHeaders) if (headers.has(h)) return false;
  return isLoopbackHost(url);
}
