/**
 * Live quota read from proxy traffic: the `x-codex-primary-*` / `x-codex-secondary-*` response
 * headers and the `codex.rate_limits` SSE event. At most one reading per account every few seconds
 * is kept, off the response path.
 *
 * @module
 */
import type { EpochMs, UsageWindow } from "../core/types.ts";
import { isObject, type Json } from "./validate.ts";

export interface LiveQuota {
  readonly primary: UsageWindow | null;
  readonly secondary: UsageWindow | null;
}

const numOf = (v: unknown): number | null => {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
};

/** Reset times come as epoch seconds; anything that is clearly milliseconds is kept. */
const epochMs = (v: number | null): EpochMs | null => (v === null ? null : v > 1e12 ? v : v * 1000);

function windowFromHeaders(h: Headers, name: "primary" | "secondary"): UsageWindow | null {
  const used = numOf(h.get(`x-codex-${name}-used-percent`));
  if (used === null) return null;
  return {
    usedPercent: used,
    windowMinutes: numOf(h.get(`x-codex-${name}-window-minutes`)),
    resetAt: epochMs(numOf(h.get(`x-codex-${name}-reset-at`))),
  };
}

/** Quota windows from upstream response headers, or null when there are none. */
export function quotaFromHeaders(h: Headers): LiveQuota | null {
  const primary = windowFromHeaders(h, "primary");
  const secondary = windowFromHeaders(h, "secondary");
  return primary || secondary ? { primary, secondary } : null;
}

function windowFromEvent(v: unknown): UsageWindow | null {
  if (!isObject(v)) return null;
  const used = numOf(v.used_percent);
  if (used === null) return null;
  return {
    usedPercent: used,
    windowMinutes: numOf(v.window_minutes),
    resetAt: epochMs(numOf(v.reset_at ?? v.resets_at)),
  };
}

/** Quota windows from a `codex.rate_limits` event; other limit families (a discriminator ≠ codex) are ignored. */
export function quotaFromEvent(json: Json): LiveQuota | null {
  const limitId = json.limit_id ?? json.metered_limit_name ?? json.limit_name;
  if (typeof limitId === "string" && limitId !== "codex") return null;
  const rl = isObject(json.rate_limits) ? json.rate_limits : null;
  if (!rl) return null;
  const primary = windowFromEvent(rl.primary);
  const secondary = windowFromEvent(rl.secondary);
  return primary || secondary ? { primary, secondary } : null;
}

/** Stores one reading (through the account repository, the one writer of usage) and reacts to it. */
export type QuotaSink = (accountId: string, q: LiveQuota, now: EpochMs) => Promise<void>;

/**
 * Records live quota readings, throttled per account, off the response path: each kept reading goes
 * to the sink (stored as usage snapshots, then `usage.fetched` fires, so a window seen at 100% blocks
 * the account at once). Failures go to `onError` only.
 */
export class LiveQuotaRecorder {
  readonly #last = new Map<string, number>();

  constructor(
    private readonly sink: QuotaSink,
    private readonly onError: (e: unknown) => void,
    private readonly minIntervalMs = 5000,
  ) {}

  record(accountId: string, q: LiveQuota, now: EpochMs): void {
    if (!q.primary && !q.secondary) return;
    const last = this.#last.get(accountId) ?? 0;
    if (now - last < this.minIntervalMs) return;
    this.#last.set(accountId, now);
    queueMicrotask(() => {
      this.sink(accountId, q, now).catch(this.onError);
    });
  }
}
