/**
 * "Is this request from this machine?" — the decision behind keyless proxy use and password-less
 * admin use. Local means: the resolved client address is loopback, the URL's host is a loopback
 * name (a DNS-rebinding page in a browser reaches 127.0.0.1 with a foreign Host and is refused),
 * and, unless the socket peer is a trusted proxy, no header claims another client (a reverse proxy
 * on the same machine that is not listed in CODEX_LB_TRUSTED_PROXIES makes every caller remote,
 * never local).
 *
 * @module
 */
import { type Cidr, inRanges, isLoopback } from "../core/address.ts";
import { clientIdentityHeaders } from "../firewall/forwarded.ts";

const LOCAL_HOSTNAMES = new Set(["localhost", "::1", "[::1]"]);

export function isLocalRequest(opts: {
  readonly clientIp: string | null;
  readonly peerIp: string | null;
  readonly headers: Headers;
  readonly url: URL;
  readonly trustedProxies: readonly Cidr[];
}): boolean {
  const { clientIp, peerIp, headers, url, trustedProxies } = opts;
  if (!isLoopback(clientIp)) return false;
  const host = url.hostname.toLowerCase();
  if (!LOCAL_HOSTNAMES.has(host) && !isLoopback(host.replace(/^\[|\]$/g, ""))) return false;
  if (!inRanges(trustedProxies, peerIp)) {
    for (const h of clientIdentityHeaders) if ((headers.get(h) ?? "").trim() !== "") return false;
  }
  return true;
}
