/** Tokens and cost per day for 28 days, by model, by account and by API key; latency percentiles. */
import { useApi } from "../api.ts";
import { ErrorText } from "../components/ui.tsx";
import { browserNow, ms, num, time, usd } from "../format.ts";

interface Totals {
  requests: number;
  errors: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  costUsd: number;
}
export interface UsageReport {
  since: number;
  until: number;
  days: (Totals & { day: string })[];
  byModel: (Totals & { model: string | null })[];
  byAccount: (Totals & { accountId: string | null; email: string | null })[];
  byApiKey: (Totals & { apiKeyId: string | null; name: string | null })[];
  latency: {
    samples: number;
    ttfbMs: { p50: number | null; p90: number | null; p99: number | null };
    outputTokensPerSecond: { p50: number | null; p90: number | null; p99: number | null };
  };
}

function DayChart(props: { days: UsageReport["days"] }) {
  const max = Math.max(1, ...props.days.map((d) => d.inputTokens + d.outputTokens));
  const w = 10;
  const h = 80;
  return (
    <svg
      class="chart"
      viewBox={`0 0 ${props.days.length * w} ${h}`}
      preserveAspectRatio="none"
      role="img"
      aria-label="Tokens per day, last 28 days"
    >
      {props.days.map((d, i) => {
        const total = ((d.inputTokens + d.outputTokens) / max) * h;
        const out = (d.outputTokens / max) * h;
        return (
          <g key={d.day}>
            <title>{`${d.day}: ${num(d.inputTokens)} in, ${num(d.outputTokens)} out, ${usd(d.costUsd)}`}</title>
            <rect class="in" x={i * w + 1} y={h - total} width={w - 2} height={total - out} />
            <rect class="out" x={i * w + 1} y={h - out} width={w - 2} height={out} />
          </g>
        );
      })}
    </svg>
  );
}

function Breakdown(props: { title: string; rows: (Totals & { label: string })[] }) {
  return (
    <section>
      <h2>{props.title}</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{props.title.replace(/^By /, "")}</th>
              <th scope="col">Requests</th>
              <th scope="col">Errors</th>
              <th scope="col">Input tokens</th>
              <th scope="col">Output tokens</th>
              <th scope="col">Cost</th>
            </tr>
          </thead>
          <tbody>
            {props.rows.map((r) => (
              <tr key={r.label}>
                <th scope="row">{r.label}</th>
                <td>{num(r.requests)}</td>
                <td>{num(r.errors)}</td>
                <td>{num(r.inputTokens)}</td>
                <td>{num(r.outputTokens)}</td>
                <td>{usd(r.costUsd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {props.rows.length === 0 && <p class="muted">Nothing in the last 28 days.</p>}
    </section>
  );
}

export function UsagePage() {
  // Days start at the browser's local midnight.
  const tz = -new Date(browserNow()).getTimezoneOffset();
  // Not refetched on every live event: the report scans 28 days of logs. The server keeps it 30 s.
  const q = useApi<UsageReport>(`/api/usage/report?days=28&tzOffsetMinutes=${tz}`);
  const r = q.data;
  return (
    <>
      <div class="toolbar">
        <button type="button" onClick={q.reload} disabled={q.loading}>
          Refresh
        </button>
        {r && <span class="muted">as of {time(r.until)}</span>}
      </div>
      <ErrorText error={q.error} />
      {r && (
        <>
          <section aria-label="Per day">
            <h2>Tokens per day</h2>
            <p class="legend">
              <span class="key in" /> input <span class="key out" /> output
            </p>
            <DayChart days={r.days} />
            <details>
              <summary>Per-day table</summary>
              <Breakdown title="By day" rows={r.days.map((d) => ({ ...d, label: d.day }))} />
            </details>
          </section>
          <section aria-label="Latency">
            <h2>Latency ({num(r.latency.samples)} successful requests)</h2>
            <table>
              <thead>
                <tr>
                  <th scope="col">Percentile</th>
                  <th scope="col">Time to first token</th>
                  <th scope="col">Output tokens per second</th>
                </tr>
              </thead>
              <tbody>
                {(["p50", "p90", "p99"] as const).map((p) => (
                  <tr key={p}>
                    <th scope="row">{p}</th>
                    <td>{ms(r.latency.ttfbMs[p])}</td>
                    <td>
                      {r.latency.outputTokensPerSecond[p] === null
                        ? "–"
                        : r.latency.outputTokensPerSecond[p]!.toFixed(1)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          <Breakdown title="By model" rows={r.byModel.map((x) => ({ ...x, label: x.model ?? "(none)" }))} />
          <Breakdown
            title="By account"
            rows={r.byAccount.map((x) => ({ ...x, label: x.email ?? x.accountId ?? "(none)" }))}
          />
          <Breakdown
            title="By API key"
            rows={r.byApiKey.map((x) => ({ ...x, label: x.name ?? x.apiKeyId ?? "(no key)" }))}
          />
        </>
      )}
    </>
  );
}
