/** API keys: create (the key is shown once, with copy), limits and allowed models, usage against each limit, deactivate, regenerate, delete. */
import { useState } from "preact/hooks";
import { api, invalidate, useApi } from "../api.ts";
import { CopyButton, ErrorText, Panel, useAction } from "../components/ui.tsx";
import { num, relative, time, usd } from "../format.ts";

interface Limit {
  limitType: string;
  limitWindow: string;
  maxValue: number;
  currentValue: number;
  remainingValue: number;
  resetsAt: number;
}
export interface ApiKey {
  id: string;
  name: string;
  keyPrefix: string;
  isActive: boolean;
  expiresAt: number | null;
  allowedModels: string[] | null;
  createdAt: number;
  lastUsedAt: number | null;
  limits: Limit[];
}

const value = (type: string, v: number) => (type === "cost_usd" ? usd(v) : num(Math.round(v)));

function NewKeyShown(props: { name: string; secret: string; onClose: () => void }) {
  return (
    <Panel title={`Key for ${props.name}`} onClose={props.onClose} id="new-key">
      <p>Copy the key now: it is shown only once.</p>
      <p class="row">
        <code class="secret" data-testid="new-key">
          {props.secret}
        </code>
        <CopyButton text={props.secret} label="Copy key" />
      </p>
    </Panel>
  );
}

function CreateForm(props: { onCreated: (name: string, key: string) => void }) {
  const [name, setName] = useState("");
  const [models, setModels] = useState("");
  const [limitType, setLimitType] = useState("");
  const [limitWindow, setLimitWindow] = useState("daily");
  const [maxValue, setMaxValue] = useState("");
  const action = useAction();
  return (
    <form
      class="filters"
      aria-label="Create an API key"
      onSubmit={(e) => {
        e.preventDefault();
        void action.run(async () => {
          const allowedModels = models
            .split(",")
            .map((m) => m.trim())
            .filter(Boolean);
          const body = {
            name: name.trim(),
            allowedModels: allowedModels.length ? allowedModels : null,
            limits: limitType ? [{ limitType, limitWindow, maxValue: Number(maxValue) }] : [],
          };
          const r = await api<{ key: string; name: string }>("/api/api-keys", { method: "POST", body });
          props.onCreated(r.name, r.key);
          setName("");
          setModels("");
          setMaxValue("");
          invalidate("api-keys");
        });
      }}
    >
      <label>
        Name
        <input
          type="text"
          required
          maxLength={128}
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
      </label>
      <label>
        Allowed models (comma-separated, empty = all)
        <input type="text" value={models} onInput={(e) => setModels(e.currentTarget.value)} />
      </label>
      <label>
        Limit
        <select value={limitType} onChange={(e) => setLimitType(e.currentTarget.value)}>
          <option value="">none</option>
          <option value="total_tokens">total tokens</option>
          <option value="input_tokens">input tokens</option>
          <option value="output_tokens">output tokens</option>
          <option value="cost_usd">cost (USD)</option>
        </select>
      </label>
      {limitType && (
        <>
          <label>
            Window
            <select value={limitWindow} onChange={(e) => setLimitWindow(e.currentTarget.value)}>
              <option value="5h">5 hours</option>
              <option value="daily">daily</option>
              <option value="weekly">weekly</option>
              <option value="monthly">monthly</option>
            </select>
          </label>
          <label>
            Maximum
            <input
              type="number"
              min="0"
              step="any"
              required
              value={maxValue}
              onInput={(e) => setMaxValue(e.currentTarget.value)}
            />
          </label>
        </>
      )}
      <div class="filter-buttons">
        <button type="submit" class="primary" disabled={action.busy}>
          Create key
        </button>
      </div>
      <ErrorText error={action.error} />
    </form>
  );
}

function KeyRow(props: { k: ApiKey; onSecret: (name: string, key: string) => void }) {
  const { k } = props;
  const action = useAction();
  const path = `/api/api-keys/${encodeURIComponent(k.id)}`;
  return (
    <tr data-key={k.name}>
      <th scope="row">
        {k.name}
        <div class="mono small muted">{k.keyPrefix}…</div>
      </th>
      <td>
        {k.isActive ? "active" : "deactivated"}
        {k.expiresAt ? <div class="small">expires {time(k.expiresAt)}</div> : null}
      </td>
      <td class="small">{k.allowedModels?.join(", ") || "all models"}</td>
      <td class="small">
        {k.limits.length === 0
          ? "no limits"
          : k.limits.map((l) => (
              <div key={`${l.limitType}-${l.limitWindow}`}>
                {l.limitType} / {l.limitWindow}: {value(l.limitType, l.currentValue)} of{" "}
                {value(l.limitType, l.maxValue)}
                <span class="muted"> (resets {relative(l.resetsAt)})</span>
              </div>
            ))}
      </td>
      <td class="small">{k.lastUsedAt ? relative(k.lastUsedAt) : "never"}</td>
      <td>
        <div class="actions">
          <button
            type="button"
            aria-label={`${k.isActive ? "Deactivate" : "Activate"} ${k.name}`}
            onClick={() =>
              action.run(async () => {
                await api(path, { method: "PATCH", body: { isActive: !k.isActive } });
                invalidate("api-keys");
              })
            }
          >
            {k.isActive ? "Deactivate" : "Activate"}
          </button>
          <button
            type="button"
            aria-label={`Regenerate ${k.name}`}
            onClick={() => {
              if (!confirm(`Regenerate ${k.name}? The old key stops working at once.`)) return;
              void action.run(async () => {
                const r = await api<{ key: string }>(`${path}/regenerate`, { method: "POST" });
                props.onSecret(k.name, r.key);
                invalidate("api-keys");
              });
            }}
          >
            Regenerate
          </button>
          <button
            type="button"
            class="danger"
            aria-label={`Delete ${k.name}`}
            onClick={() => {
              if (!confirm(`Delete ${k.name}?`)) return;
              void action.run(async () => {
                await api(path, { method: "DELETE" });
                invalidate("api-keys");
              });
            }}
          >
            Delete
          </button>
        </div>
        <ErrorText error={action.error} />
      </td>
    </tr>
  );
}

export function ApiKeysPage() {
  const q = useApi<ApiKey[]>("/api/api-keys", ["api-keys", "requests"]);
  const [secret, setSecret] = useState<{ name: string; key: string } | null>(null);
  const onSecret = (name: string, key: string) => setSecret({ name, key });
  return (
    <>
      <CreateForm onCreated={onSecret} />
      {secret && <NewKeyShown name={secret.name} secret={secret.key} onClose={() => setSecret(null)} />}
      <ErrorText error={q.error} />
      <div class="table-wrap">
        <table>
          <caption class="sr-only">API keys</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Models</th>
              <th scope="col">Limits and usage</th>
              <th scope="col">Last used</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {q.data?.map((k) => (
              <KeyRow key={k.id} k={k} onSecret={onSecret} />
            ))}
          </tbody>
        </table>
      </div>
      {q.data && q.data.length === 0 && <p>No API keys yet.</p>}
    </>
  );
}
