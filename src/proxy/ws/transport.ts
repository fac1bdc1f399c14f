/**
 * Which transport WebSocket clients' turns use towards an upstream. `CODEX_LB_UPSTREAM_TRANSPORT`
 * = `websocket` or `http` decides outright; `auto` tries the upstream WebSocket and, when the
 * upstream answers the upgrade with a status that means "no WebSocket here", uses HTTP SSE for that
 * upstream from then on (remembered per upstream base URL for the life of the process).
 *
 * @module
 */

export type UpstreamTransport = "websocket" | "http";

/** Handshake answers that mean the upstream does not speak WebSocket on that path. */
const REFUSED = new Set([404, 405, 426, 501]);

const remembered = new Map<string, UpstreamTransport>();

export function upgradeRefused(status: number): boolean {
  return REFUSED.has(status);
}

export function transportFor(setting: "auto" | UpstreamTransport, upstreamUrl: string): UpstreamTransport {
  if (setting !== "auto") return setting;
  return remembered.get(upstreamUrl) ?? "websocket";
}

export function rememberTransport(upstreamUrl: string, t: UpstreamTransport): void {
  remembered.set(upstreamUrl, t);
}

/** What `auto` has learnt about an upstream (null: nothing yet). */
export function rememberedTransport(upstreamUrl: string): UpstreamTransport | null {
  return remembered.get(upstreamUrl) ?? null;
}

/** `https://host/backend-api` → `wss://host/backend-api/codex/responses`. */
export function websocketUrl(upstreamUrl: string): string {
  return `${upstreamUrl.replace(/^http/, "ws")}/codex/responses`;
}
