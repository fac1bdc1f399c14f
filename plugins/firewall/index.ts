/**
 * Firewall: admits or refuses proxy requests by client address (`request.admit` → `request.reject`
 * with `ip_not_allowed`). The allowlist (addresses and CIDR ranges, managed at `/api/firewall`) is
 * read through `services.firewall`; an empty list allows everyone. The client address arrives
 * resolved (`event.clientIp`: socket peer, or the trusted proxy's forwarded address); null — a
 * malformed forwarding header from a trusted proxy — is refused while a list is active.
 *
 * @module
 */
import {
  type Cidr,
  definePlugin,
  inRanges,
  parseCidr,
  type RequestAction,
  type RequestAdmitEvent,
} from "../../src/plugin-api.ts";

export default definePlugin({
  name: "codex-lb.firewall",
  version: "1.0.0",
  setup(ctx) {
    // The core hands out the same array until the list changes: parse each version once.
    const parsed = new WeakMap<readonly string[], Cidr[]>();
    const decide = (e: RequestAdmitEvent, list: readonly string[]): RequestAction | undefined => {
      if (list.length === 0) return;
      let ranges = parsed.get(list);
      if (!ranges) {
        ranges = list.map((s) => parseCidr(s)).filter((c): c is Cidr => c !== null);
        parsed.set(list, ranges);
      }
      if (e.clientIp !== null && inRanges(ranges, e.clientIp)) return;
      ctx.log.warn(
        { requestId: e.requestId, clientIp: e.clientIp, peerIp: e.peerIp, path: e.path },
        "firewall refused a client address",
      );
      return {
        type: "request.reject",
        code: "ip_not_allowed",
        message:
          e.clientIp === null
            ? "Client address could not be determined (malformed forwarding header from a trusted proxy)"
            : `Client address ${e.clientIp} is not allowed`,
      };
    };
    ctx.on("request.admit", (e) => {
      if (e.surface !== "proxy") return;
      // The cached list decides at once (no promise: admission passes the hook without a turn);
      // the store is read only when nothing is cached.
      const list = ctx.services.firewall.cached?.();
      return list ? decide(e, list) : ctx.services.firewall.allowlist().then((l) => decide(e, l));
    });
  },
});
