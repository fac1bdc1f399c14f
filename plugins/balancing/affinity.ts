/**
 * Which affinity key a request carries. The first present source wins, most specific first:
 * the Codex turn state, the session id, the thread id, then the body's `prompt_cache_key`.
 *
 * @module
 */
import type { StickyKind } from "../../src/plugin-api.ts";

export interface AffinityKey {
  readonly key: string;
  readonly kind: StickyKind;
}

/** Longer values are not used as keys (no real client sends them; they would bloat the table). */
export const MAX_KEY_LENGTH = 512;

/** Header sources in priority order. */
export const affinityHeaders: readonly (readonly [header: string, kind: StickyKind])[] = [
  ["x-codex-turn-state", "turn_state"],
  ["session-id", "session"],
  ["session_id", "session"],
  ["thread-id", "thread"],
];

function usable(v: string | null | undefined): string | null {
  if (typeof v !== "string") return null;
  const t = v.trim();
  return t === "" || t.length > MAX_KEY_LENGTH ? null : t;
}

/** The request's affinity key, or null when it carries none. */
export function affinityKeyOf(
  headers: Headers,
  body: Readonly<{ promptCacheKey?: string | null }>,
): AffinityKey | null {
  for (const [header, kind] of affinityHeaders) {
    const key = usable(headers.get(header));
    if (key) return { key, kind };
  }
  const key = usable(body.promptCacheKey);
  return key ? { key, kind: "prompt_cache" } : null;
}
