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

/** What becomes of a client header: dropped, replaced by the persona (non-Codex clients), or kept. */
const DROP = 0;
const PERSONA = 1;
const KEEP = 2;

/** Each header name's fate, worked out once per name (bounded: the names are the clients' choice). */
const fates = new Map<string, number>();
const FATES_KEPT = 1024;

function fateOf(name: string): number {
  let f = fates.get(name);
  if (f !== undefined) return f;
  f =
    DROPPED.has(name) || DROPPED_PREFIXES.some((p) => name.startsWith(p))
      ? DROP
      : PERSONA_REPLACED.has(name) || PERSONA_REPLACED_PREFIXES.some((p) => name.startsWith(p))
        ? PERSONA
        : KEEP;
  if (fates.size >= FATES_KEPT) fates.clear();
  fates.set(name, f);
  return f;
}

/** The account's part of the headers. */
interface AccountPart {
  readonly authorization: string;
  readonly chatgptAccountId: string | null;
  readonly installationId: string;
}

/**
 * Made once per credentials object (the credentials provider hands out the same object until the
 * account's tokens change; a provider that makes a new one per call just misses).
 */
const accountParts = new WeakMap<AccountCredentials, AccountPart>();

function accountPart(creds: AccountCredentials): AccountPart {
  let part = accountParts.get(creds);
  if (!part) {
    const authorization = `Bearer ${creds.accessToken}`;
    // Flattened here once: a concatenated string would be flattened by every Headers.set.
    authorization.charCodeAt(0);
    part = {
      authorization,
      chatgptAccountId: creds.chatgptAccountId || null,
      installationId: creds.installationId,
    };
    accountParts.set(creds, part);
  }
  return part;
}

/** The upstream request headers for one attempt on one account. */
export function buildUpstreamHeaders(
  client: Headers,
  creds: AccountCredentials,
  opts: { requestId: string; accept?: string },
): Headers {
  // Native clients keep their identity headers (PERSONA), others only what is KEEP.
  const keepAbove = isNativeCodexClient(client) ? DROP : PERSONA;
  const out = new Headers();
  // Headers hands out lower-case names.
  client.forEach((value, key) => {
    if (fateOf(key) > keepAbove) out.set(key, value);
  });
  if (keepAbove === PERSONA) {
    out.set("user-agent", CODEX_PERSONA_USER_AGENT);
    out.set("originator", "codex_cli_rs");
    out.set("version", CODEX_CLIENT_VERSION);
  }
  const account = accountPart(creds);
  out.set("authorization", account.authorization);
  if (account.chatgptAccountId !== null) out.set("chatgpt-account-id", account.chatgptAccountId);
  out.set("x-codex-installation-id", account.installationId);
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
