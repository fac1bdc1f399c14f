/** Formatting helpers shared by the pages (numbers, money, times, durations). */

const nf = new Intl.NumberFormat("en-US");

export const num = (n: number | null | undefined): string =>
  n === null || n === undefined ? "–" : nf.format(n);

export const usd = (n: number | null | undefined): string =>
  n === null || n === undefined ? "–" : `$${n < 1 && n > 0 ? n.toFixed(4) : n.toFixed(2)}`;

export const pct = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined ? "–" : `${n.toFixed(digits)}%`;

export const ms = (n: number | null | undefined): string =>
  n === null || n === undefined ? "–" : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;

/** `2026-12-01 04:05:06` in the browser's time zone. */
export function time(v: number | string | null | undefined): string {
  if (v === null || v === undefined) return "–";
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return "–";
  const p = (x: number) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Epoch ms now, in the browser (the server's injected clock does not reach the page). */
export const browserNow = (): number => Math.round(performance.timeOrigin + performance.now());

/** Epoch ms of the browser's local midnight today. */
export function localMidnight(): number {
  const d = new Date(browserNow());
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** "in 3 h 12 min" / "5 min ago". */
export function relative(v: number | null | undefined, now = browserNow()): string {
  if (v === null || v === undefined) return "–";
  const diff = v - now;
  const abs = Math.abs(diff);
  const m = Math.round(abs / 60_000);
  const text =
    m < 1
      ? "less than a minute"
      : m < 60
        ? `${m} min`
        : m < 48 * 60
          ? `${Math.floor(m / 60)} h ${m % 60} min`
          : `${Math.round(m / 1440)} days`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** Human words for an account status. */
export const statusLabel: Record<string, string> = {
  active: "Active",
  rate_limited: "Rate limited",
  quota_exceeded: "Quota exceeded",
  paused: "Paused",
  reauth_required: "Re-login required",
  deactivated: "Deactivated",
};
