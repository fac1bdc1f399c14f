/**
 * Builds the headers of an upstream `/codex/responses` call from the client's headers and the
 * account's credentials. Codex CLI's own headers pass through; other clients get the Codex CLI
 * persona; hop-by-hop, forwarded-for and client credentials never leave the gateway.
 *
 * @module
 */
import type { AccountCredentials } from "../core/types.ts";

/** The Codex CLI version the persona claims (and sends as `client_version` for the model list). */
export const CODEX_CLIENT_VERSION = "0.171.0";

/** The User-Agent non-Codex clients are given upstream. */
export const CODEX_PERSONA_USER_AGENT = `codex_cli_rs/${CODEX_CLIENT_VERSION} (Linux 6.8.0; x86_64) codex-lb`;

/** Never forwarded: hop-by-hop, transport, forwarded-for, and anything carrying client credentials. */
const DROPPED = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "x-api-key",
  "chatgpt-account-id",
  "x-codex-installation-id",
  "content-length",
  "content-type",
  "accept",
  "accept-encoding",
  "host",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "via",
  "x-request-id",
  "request-id",
]);
const DROPPED_PREFIXES = ["x-forwarded-", "cf-", "proxy-", "sec-"];

/** Identity headers of other clients, replaced by the persona. */
const PERSONA_REPLACED = new Set([
  "user-agent",
  "originator",
  "version",
  "openai-organization",
  "openai-project",
]);
const PERSONA_REPLACED_PREFIXES = ["x-stainless-", "x-openai-client-"];

const NATIVE_UA = [
  "codex_cli_rs",
  "codex-tui",
  "codex_exec",
  "codex_sdk_ts",
  "codex_vscode",
  "codex desktop",
];
const NATIVE_ORIGINATORS = new Set([
  "codex desktop",
  "codex_atlas",
  "codex_chatgpt_desktop",
  "codex_cli_rs",
  "codex_exec",
  "codex_sdk_ts",
  "codex_vscode",
]);

/** True for Codex CLI (and its siblings): their own identity headers are kept as they are. */
export function isNativeCodexClient(headers: Headers): boolean {
  const ua = (headers.get("user-agent") ?? "").toLowerCase();
  if (NATIVE_UA.some((p) => ua.startsWith(p))) return true;
  return NATIVE_ORIGINATORS.has((headers.get("originator") ?? "").toLowerCase());
}

/** The upstream request headers for one attempt on one account. */
export function buildUpstreamHeaders(
  client: Headers,
  creds: AccountCredentials,
  opts: { requestId: string; accept?: string },
): Headers {
  const native = isNativeCodexClient(client);
  const out = new Headers();
  client.forEach((value, key) => {
    const k = key.toLowerCase();
    if (DROPPED.has(k) || DROPPED_PREFIXES.some((p) => k.startsWith(p))) return;
    if (!native && (PERSONA_REPLACED.has(k) || PERSONA_REPLACED_PREFIXES.some((p) => k.startsWith(p))))
      return;
    out.set(k, value);
  });
  if (!native) {
    out.set("user-agent", CODEX_PERSONA_USER_AGENT);
    out.set("originator", "codex_cli_rs");
    out.set("version", CODEX_CLIENT_VERSION);
  }
  out.set("authorization", `Bearer ${creds.accessToken}`);
  if (creds.chatgptAccountId) out.set("chatgpt-account-id", creds.chatgptAccountId);
  out.set("x-codex-installation-id", creds.installationId);
  const turn = out.get("x-codex-turn-metadata");
  if (turn?.includes("installation_id"))
    out.set("x-codex-turn-metadata", withInstallationId(turn, creds.installationId));
  out.set("x-request-id", opts.requestId);
  out.set("accept", opts.accept ?? "text/event-stream");
  out.set("content-type", "application/json");
  return out;
}

/** The account's installation id inside Codex's turn metadata JSON (the client's own id would leak otherwise). */
function withInstallationId(json: string, installationId: string): string {
  try {
    const v = JSON.parse(json) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v) && "installation_id" in v) {
      return JSON.stringify({ ...(v as Record<string, unknown>), installation_id: installationId });
    }
  } catch {
    // not JSON: forwarded as it is
  }
  return json;
}
