/** Pool health at a glance: accounts by status with their quota bars, traffic, errors, tokens and cost today. */
import { useApi } from "../api.ts";
import { ErrorText, QuotaBar, StatusBadge } from "../components/ui.tsx";
import { localMidnight, num, pct, statusLabel, usd } from "../format.ts";
import type { Account } from "./accounts.tsx";

export interface Overview {
  generatedAt: number;
  accounts: { total: number; usable: number; byStatus: Record<string, number> };
  traffic: {
    requestsLastMinute: number;
    requestsLastHour: number;
    errorsLastHour: number;
    errorRateLastHour: number;
    perMinute: number[];
  };
  today: {
    since: number;
    requests: number;
    errors: number;
    inputTokens: number;
    cachedInputTokens: number;
    outputTokens: number;
    costUsd: number;
  };
}

/** Requests per minute over the last hour, as a small bar chart (SVG, no library). */
function Sparkline(props: { values: number[]; label: string }) {
  const max = Math.max(1, ...props.values);
  const w = 4;
  return (
    <svg
      class="spark"
      viewBox={`0 0 ${props.values.length * w} 40`}
      preserveAspectRatio="none"
      role="img"
      aria-label={props.label}
    >
      {props.values.map((v, i) => (
        <rect key={i} x={i * w} y={40 - (v / max) * 40} width={w - 1} height={(v / max) * 40} />
      ))}
    </svg>
  );
}

export function OverviewPage() {
  // "Today" starts at the browser's local midnight.
  const overview = useApi<Overview>(`/api/overview?since=${localMidnight()}`, ["requests", "accounts"]);
  const accounts = useApi<{ accounts: Account[] }>("/api/accounts", ["accounts"]);
  const o = overview.data;
  return (
    <>
      <ErrorText error={overview.error ?? accounts.error} />
      {o && (
        <section class="tiles" aria-label="Key figures">
          <div class="tile">
            <div class="tile-label">Accounts usable</div>
            <div class="tile-value" data-testid="accounts-usable">
              {o.accounts.usable} / {o.accounts.total}
            </div>
            <div class="muted">
              {Object.entries(o.accounts.byStatus)
                .map(([s, n]) => `${n} ${statusLabel[s] ?? s}`)
                .join(", ") || "no accounts yet"}
            </div>
          </div>
          <div class="tile">
            <div class="tile-label">Requests per minute</div>
            <div class="tile-value" data-testid="rpm">
              {num(o.traffic.requestsLastMinute)}
            </div>
            <Sparkline values={o.traffic.perMinute} label="Requests per minute over the last hour" />
          </div>
          <div class="tile">
            <div class="tile-label">Error rate (last hour)</div>
            <div class="tile-value" data-testid="error-rate">
              {pct(o.traffic.errorRateLastHour * 100, 1)}
            </div>
            <div class="muted">
              {num(o.traffic.errorsLastHour)} of {num(o.traffic.requestsLastHour)} requests
            </div>
          </div>
          <div class="tile">
            <div class="tile-label">Tokens today</div>
            <div class="tile-value" data-testid="tokens-today">
              {num(o.today.inputTokens + o.today.outputTokens)}
            </div>
            <div class="muted">
              {num(o.today.inputTokens)} in ({num(o.today.cachedInputTokens)} cached),{" "}
              {num(o.today.outputTokens)} out
            </div>
          </div>
          <div class="tile">
            <div class="tile-label">Cost today</div>
            <div class="tile-value" data-testid="cost-today">
              {usd(o.today.costUsd)}
            </div>
            <div class="muted">{num(o.today.requests)} requests</div>
          </div>
        </section>
      )}
      <h2>Accounts</h2>
      {accounts.data && accounts.data.accounts.length === 0 && (
        <p>
          No accounts yet. <a href="/dashboard/accounts">Add one on the Accounts page.</a>
        </p>
      )}
      <ul class="account-cards">
        {accounts.data?.accounts.map((a) => (
          <li key={a.id} class="card account-card" data-account={a.email ?? a.id}>
            <div class="card-head">
              <strong>{a.email ?? a.id}</strong>
              <StatusBadge status={a.status} />
            </div>
            <div class="muted">
              {a.planType ?? "unknown plan"} · {a.health.inFlight} in flight
            </div>
            <QuotaBar label="5-hour" window={a.usage.primary} />
            <QuotaBar label="Weekly" window={a.usage.secondary} />
          </li>
        ))}
      </ul>
    </>
  );
}
