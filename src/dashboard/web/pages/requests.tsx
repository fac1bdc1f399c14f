/**
 * The request log, newest first and live: filters (account, API key, model, status, endpoint, time
 * range), lookup by request id, server-side paging, and a detail panel per request.
 */
import { useState } from "preact/hooks";
import { useApi } from "../api.ts";
import { ErrorText, Panel } from "../components/ui.tsx";
import { ms, num, time, usd } from "../format.ts";
import type { Account } from "./accounts.tsx";

export interface RequestLog {
  id: number;
  requestedAt: number;
  requestId: string;
  accountId: string | null;
  apiKeyId: string | null;
  model: string | null;
  endpoint: string;
  client: string | null;
  clientIp: string | null;
  status: string;
  httpStatus: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  inputTokens: number | null;
  cachedInputTokens: number | null;
  outputTokens: number | null;
  reasoningTokens: number | null;
  latencyMs: number | null;
  ttfbMs: number | null;
  queueMs: number | null;
  costUsd: number | null;
  responseId: string | null;
  reasoningEffort: string | null;
}
interface Page {
  items: RequestLog[];
  total: number;
  limit: number;
  offset: number;
}

const PAGE = 50;

interface Filters {
  accountId: string;
  apiKeyId: string;
  model: string;
  status: string;
  endpoint: string;
  since: string;
  until: string;
  requestId: string;
}
const empty: Filters = {
  accountId: "",
  apiKeyId: "",
  model: "",
  status: "",
  endpoint: "",
  since: "",
  until: "",
  requestId: "",
};

function queryOf(f: Filters, offset: number): string {
  const p = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  for (const [k, v] of Object.entries(f)) {
    if (!v) continue;
    // datetime-local values are local times: send them as instants.
    p.set(k, k === "since" || k === "until" ? new Date(v).toISOString() : v);
  }
  return `/api/request-logs?${p}`;
}

function Detail(props: { r: RequestLog; accountName: (id: string | null) => string; onClose: () => void }) {
  const { r } = props;
  const rows: [string, string][] = [
    ["Request id", r.requestId],
    ["Time", time(r.requestedAt)],
    ["Status", `${r.status}${r.httpStatus ? ` (HTTP ${r.httpStatus})` : ""}`],
    ["Endpoint", r.endpoint],
    ["Model", `${r.model ?? "–"}${r.reasoningEffort ? ` (${r.reasoningEffort})` : ""}`],
    ["Account", props.accountName(r.accountId)],
    ["API key", r.apiKeyId ?? "–"],
    ["Client", `${r.client ?? "–"} from ${r.clientIp ?? "–"}`],
    ["Queue wait", ms(r.queueMs)],
    ["Time to first byte", ms(r.ttfbMs)],
    ["Total time", ms(r.latencyMs)],
    [
      "Tokens",
      `${num(r.inputTokens)} in (${num(r.cachedInputTokens)} cached), ${num(r.outputTokens)} out (${num(r.reasoningTokens)} reasoning)`,
    ],
    ["Cost", usd(r.costUsd)],
    ["Response id", r.responseId ?? "–"],
  ];
  if (r.errorCode || r.errorMessage)
    rows.push(["Error", `${r.errorCode ?? ""} ${r.errorMessage ?? ""}`.trim()]);
  return (
    <Panel title="Request details" onClose={props.onClose} id="request-detail">
      <dl class="details">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </Panel>
  );
}

export function RequestsPage() {
  const [draft, setDraft] = useState<Filters>(empty);
  const [filters, setFilters] = useState<Filters>(empty);
  const [offset, setOffset] = useState(0);
  const [selected, setSelected] = useState<RequestLog | null>(null);
  const page = useApi<Page>(queryOf(filters, offset), ["requests"]);
  const accounts = useApi<{ accounts: Account[] }>("/api/accounts", ["accounts"]);
  const keys = useApi<{ id: string; name: string }[]>("/api/api-keys", ["api-keys"]);
  const accountName = (id: string | null) =>
    id === null ? "–" : (accounts.data?.accounts.find((a) => a.id === id)?.email ?? id);
  const keyName = (id: string | null) =>
    id === null ? "–" : (keys.data?.find((k) => k.id === id)?.name ?? id);
  const field = (k: keyof Filters) => ({
    value: draft[k],
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const apply = (f: Filters) => {
    setFilters(f);
    setOffset(0);
    setSelected(null);
  };
  const items = page.data?.items ?? [];
  const total = page.data?.total ?? 0;
  return (
    <>
      <form
        class="row"
        aria-label="Find a request"
        onSubmit={(e) => {
          e.preventDefault();
          apply({ ...empty, requestId: draft.requestId.trim() });
        }}
      >
        <label class="grow">
          Find by request id
          <input type="search" {...field("requestId")} />
        </label>
        <button type="submit">Find</button>
      </form>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply({ ...draft, requestId: "" });
        }}
      >
        <label>
          Account
          <select {...field("accountId")} onChange={field("accountId").onInput}>
            <option value="">any</option>
            {accounts.data?.accounts.map((a) => (
              <option key={a.id} value={a.id}>
                {a.email ?? a.id}
              </option>
            ))}
          </select>
        </label>
        <label>
          API key
          <select {...field("apiKeyId")} onChange={field("apiKeyId").onInput}>
            <option value="">any</option>
            {keys.data?.map((k) => (
              <option key={k.id} value={k.id}>
                {k.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Model
          <input type="text" {...field("model")} />
        </label>
        <label>
          Status
          <select {...field("status")} onChange={field("status").onInput}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="error">error</option>
            <option value="cancelled">cancelled</option>
          </select>
        </label>
        <label>
          Endpoint
          <input type="text" placeholder="/v1/responses" {...field("endpoint")} />
        </label>
        <label>
          From
          <input type="datetime-local" {...field("since")} />
        </label>
        <label>
          To
          <input type="datetime-local" {...field("until")} />
        </label>
        <div class="filter-buttons">
          <button type="submit">Apply filters</button>
          <button
            type="button"
            onClick={() => {
              setDraft(empty);
              apply(empty);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      <ErrorText error={page.error} />
      {selected && <Detail r={selected} accountName={accountName} onClose={() => setSelected(null)} />}
      <div class="table-wrap">
        <table class="requests">
          <caption class="sr-only">Request log, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Request id</th>
              <th scope="col">Status</th>
              <th scope="col">Model</th>
              <th scope="col">Account</th>
              <th scope="col">API key</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Tokens</th>
              <th scope="col">Total</th>
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id} data-request-id={r.requestId} class={selected?.id === r.id ? "selected" : ""}>
                <td>{time(r.requestedAt)}</td>
                <td>
                  <button type="button" class="link mono" onClick={() => setSelected(r)}>
                    {r.requestId}
                  </button>
                </td>
                <td>
                  <span class={`badge req-${r.status}`}>{r.httpStatus ?? r.status}</span>
                </td>
                <td>{r.model ?? "–"}</td>
                <td>{accountName(r.accountId)}</td>
                <td>{keyName(r.apiKeyId)}</td>
                <td class="mono">{r.endpoint}</td>
                <td>{num((r.inputTokens ?? 0) + (r.outputTokens ?? 0))}</td>
                <td>{ms(r.latencyMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {page.data && items.length === 0 && <p>No requests match.</p>}
      <nav class="pager" aria-label="Request log pages">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          Newer
        </button>
        <span>
          {total === 0 ? "0" : `${offset + 1}–${offset + items.length}`} of {num(total)}
        </span>
        <button type="button" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
          Older
        </button>
      </nav>
    </>
  );
}
