/**
 * Usage polling: each non-paused, non-dead account's `GET {upstream}/wham/usage` about once per
 * `usageRefreshIntervalSeconds`, staggered (one account per slice of interval / accounts). A
 * reading is stored as snapshots and fires `usage.fetched`; a failure fires `usage.failed`.
 * A 401 forces one token refresh and one retry.
 *
 * @module
 */
import {
  type AccountSnapshot,
  type FailureDetails,
  failureFromHttp,
  failureFromTransport,
  type GatewayServices,
  numeric,
  type PluginLogger,
  type Settings,
  type UsageCredits,
  type UsageRecord,
  type UsageWindow,
} from "../../src/plugin-api.ts";
import type { Refresher } from "./refresher.ts";

const SKIPPED = new Set(["paused", "reauth_required", "deactivated"]);
/**
 * After a 401/403 or a failed refresh, the account's usage is not fetched again for this long
 * (unless a new login changes the account first).
 */
export const USAGE_AUTH_BACKOFF_MS = 5 * 60_000;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | null =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : null;

function windowOf(v: unknown, now: number): UsageWindow | null {
  const w = obj(v);
  const used = numeric(w?.used_percent);
  if (!w || used === null) return null;
  const seconds = numeric(w.limit_window_seconds);
  const resetAt = numeric(w.reset_at);
  const after = numeric(w.reset_after_seconds);
  return {
    usedPercent: used,
    windowMinutes: seconds !== null ? Math.ceil(seconds / 60) : null,
    resetAt: resetAt !== null ? resetAt * 1000 : after !== null ? now + after * 1000 : null,
  };
}

/** Reads a `/wham/usage` answer; null when it has no `rate_limit` object. */
export function parseUsage(body: unknown, now: number): UsageRecord | null {
  const b = obj(body);
  const rl = obj(b?.rate_limit);
  if (!b || !rl) return null;
  const c = obj(b.credits);
  const credits: UsageCredits | null = c
    ? { hasCredits: c.has_credits === true, unlimited: c.unlimited === true, balance: numeric(c.balance) }
    : null;
  return {
    primary: windowOf(rl.primary_window, now),
    secondary: windowOf(rl.secondary_window, now),
    credits,
  };
}

/** Polls `/wham/usage` for one account per slice and reports readings and failures through hooks. */
export class UsagePoller {
  readonly #lastPolled = new Map<string, number>();
  /** Per account: no fetch before `until`, unless the account changed since (`version`: a new login). */
  readonly #backoff = new Map<string, { until: number; version: number }>();

  constructor(
    private readonly services: GatewayServices,
    private readonly settings: Readonly<Settings>,
    private readonly refresher: Refresher,
    private readonly log: PluginLogger,
  ) {}

  get intervalMs(): number {
    return this.settings.usageRefreshIntervalSeconds * 1000;
  }

  /** One slice: polls the account waiting longest, if it is due; returns the delay to the next slice. */
  async tick(): Promise<number> {
    const now = this.services.now();
    const eligible = (await this.services.accounts.list()).filter(
      (a) => !SKIPPED.has(a.status) && !this.#backingOff(a, now),
    );
    if (eligible.length === 0) return Math.min(this.intervalMs, 5_000);
    const next = eligible.reduce((best, a) =>
      (this.#lastPolled.get(a.id) ?? -1) < (this.#lastPolled.get(best.id) ?? -1) ? a : best,
    );
    const last = this.#lastPolled.get(next.id);
    if (last === undefined || now - last >= this.intervalMs * 0.9) {
      this.#lastPolled.set(next.id, now);
      await this.poll(next);
    }
    return this.intervalMs / eligible.length;
  }

  #backingOff(a: AccountSnapshot, now: number): boolean {
    const b = this.#backoff.get(a.id);
    return !!b && b.until > now && b.version === a.version;
  }

  async #backOff(id: string) {
    const snap = await this.services.accounts.get(id);
    if (snap)
      this.#backoff.set(id, { until: this.services.now() + USAGE_AUTH_BACKOFF_MS, version: snap.version });
  }

  /** Fetches and records one account's usage. */
  async poll(account: AccountSnapshot): Promise<void> {
    let creds: Awaited<ReturnType<Refresher["get"]>>;
    try {
      creds = await this.refresher.get(account.id, { trigger: "usage" });
    } catch {
      // Already classified through refresh.failed; do not hammer the auth server.
      await this.#backOff(account.id);
      return;
    }
    let r = await this.#fetch(creds);
    if (!r.ok && r.failure.httpStatus === 401) {
      try {
        creds = await this.refresher.get(account.id, { trigger: "usage", forceRefresh: true });
      } catch {
        await this.#backOff(account.id);
        return;
      }
      r = await this.#fetch(creds);
    }
    const now = this.services.now();
    const fresh = (await this.services.accounts.get(account.id)) ?? account;
    if (r.ok) {
      await this.services.apply([{ type: "usage.record", accountId: account.id, ...r.usage }], {
        source: "usage",
      });
      const snap = (await this.services.accounts.get(account.id)) ?? fresh;
      await this.services.fire("usage.fetched", { account: snap, ...r.usage, now });
      return;
    }
    if (r.failure.httpStatus === 401 || r.failure.httpStatus === 403) {
      await this.#backOff(account.id);
    }
    this.log.warn(
      { accountId: account.id, httpStatus: r.failure.httpStatus, errorCode: r.failure.errorCode },
      "usage fetch failed",
    );
    await this.services.fire("usage.failed", { ...r.failure, account: fresh, now });
  }

  async #fetch(creds: {
    accessToken: string;
    chatgptAccountId: string | null;
  }): Promise<{ ok: true; usage: UsageRecord } | { ok: false; failure: FailureDetails }> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${creds.accessToken}`,
      accept: "application/json",
    };
    if (creds.chatgptAccountId) headers["chatgpt-account-id"] = creds.chatgptAccountId;
    try {
      const res = await fetch(`${this.settings.upstreamBaseUrl}/wham/usage`, {
        headers,
        signal: AbortSignal.timeout(this.settings.usageFetchTimeoutSeconds * 1000),
      });
      const text = await res.text();
      if (!res.ok) return { ok: false, failure: failureFromHttp(res.status, text) };
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        // handled as an invalid payload
      }
      const usage = parseUsage(body, this.services.now());
      if (!usage) {
        return {
          ok: false,
          failure: {
            httpStatus: res.status,
            errorCode: "invalid_payload",
            errorType: null,
            message: "Usage answer has no rate_limit",
            transport: false,
          },
        };
      }
      return { ok: true, usage };
    } catch (e) {
      return { ok: false, failure: failureFromTransport(e) };
    }
  }
}
