/**
 * Accounts: status and reason, plan, quota windows, health, routing policy; sign in a new account
 * (browser PKCE or device code), re-login in place, import an auth.json, pause/resume, remove, export.
 */
import { useEffect, useState } from "preact/hooks";
import { api, invalidate, useApi } from "../api.ts";
import { ErrorText, Panel, QuotaBar, StatusBadge, type UsageWindow, useAction } from "../components/ui.tsx";
import { relative, time } from "../format.ts";

export interface Account {
  id: string;
  email: string | null;
  chatgptAccountId: string | null;
  planType: string | null;
  status: string;
  statusReason: string | null;
  resetAt: number | null;
  lastRefreshAt: number | null;
  accessTokenExpiresAt: number | null;
  usage: { primary: UsageWindow | null; secondary: UsageWindow | null };
  routingPolicy: string;
  health: {
    usable: boolean;
    backoffUntil: number | null;
    failureStreak: number;
    inFlight: number;
    queued: number;
  };
}

interface Flow {
  flowId: string;
  method: string;
  authorizationUrl?: string;
  callbackUrl?: string;
  verificationUrl?: string;
  userCode?: string;
  expiresInSeconds: number;
}
interface FlowStatus {
  status: "pending" | "success" | "error";
  errorMessage: string | null;
  accountId: string | null;
}

/** A login in progress: shows the link or the device code and waits for the result. */
function LoginFlow(props: { flow: Flow; onClose: () => void }) {
  const { flow } = props;
  const [status, setStatus] = useState<FlowStatus | null>(null);
  const [pasted, setPasted] = useState("");
  const action = useAction();
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout>;
    // The flow finishes on another page (the auth server); its state is read every 2 s while open.
    const tick = async () => {
      try {
        const s = await api<FlowStatus>(`/api/oauth/status?flowId=${encodeURIComponent(flow.flowId)}`);
        if (stop) return;
        setStatus(s);
        if (s.status === "pending") timer = setTimeout(tick, 2000);
        else invalidate("accounts");
      } catch {
        if (!stop) timer = setTimeout(tick, 4000);
      }
    };
    timer = setTimeout(tick, 1000);
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [flow.flowId]);
  return (
    <Panel title="Sign in an account" onClose={props.onClose}>
      {flow.method === "device" ? (
        <p>
          Open{" "}
          <a href={flow.verificationUrl} target="_blank" rel="noreferrer noopener">
            {flow.verificationUrl}
          </a>{" "}
          on any device and enter the code{" "}
          <strong class="user-code" data-testid="user-code">
            {flow.userCode}
          </strong>
          .
        </p>
      ) : (
        <>
          <p>
            <a href={flow.authorizationUrl} target="_blank" rel="noreferrer noopener">
              Open the sign-in page
            </a>{" "}
            in a browser on the gateway's machine. When the browser runs elsewhere, paste the address it was
            sent to (it starts with {flow.callbackUrl}):
          </p>
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              void action.run(async () => {
                setStatus(
                  await api<FlowStatus>("/api/oauth/manual-callback", {
                    method: "POST",
                    body: { flowId: flow.flowId, callbackUrl: pasted },
                  }),
                );
                invalidate("accounts");
              });
            }}
          >
            <label class="grow">
              Callback address
              <input type="url" required value={pasted} onInput={(e) => setPasted(e.currentTarget.value)} />
            </label>
            <button type="submit" disabled={action.busy}>
              Finish sign-in
            </button>
          </form>
        </>
      )}
      <p role="status">
        {status?.status === "success"
          ? "Signed in: the account is in the pool."
          : status?.status === "error"
            ? `Sign-in failed: ${status.errorMessage ?? "unknown error"}`
            : "Waiting for the sign-in…"}
      </p>
      <ErrorText error={action.error} />
    </Panel>
  );
}

function ImportForm() {
  const action = useAction();
  const [done, setDone] = useState<string | null>(null);
  return (
    <form
      class="row"
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const file = (form.elements.namedItem("auth_json") as HTMLInputElement).files?.[0];
        if (!file) return;
        void action.run(async () => {
          const data = new FormData();
          data.set("auth_json", file);
          const r = await api<{ email: string | null; accountId: string; created: boolean }>(
            "/api/accounts/import",
            { method: "POST", body: data },
          );
          setDone(`${r.created ? "Imported" : "Updated"} ${r.email ?? r.accountId}`);
          form.reset();
          invalidate("accounts");
        });
      }}
    >
      <label class="grow">
        Import a Codex CLI auth.json
        <input type="file" name="auth_json" accept=".json,application/json" required />
      </label>
      <button type="submit" disabled={action.busy}>
        Import
      </button>
      {done && <span role="status">{done}</span>}
      <ErrorText error={action.error} />
    </form>
  );
}

function download(name: string, data: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function AccountRow(props: { a: Account; onLogin: (flow: Flow) => void }) {
  const { a } = props;
  const action = useAction();
  const post = (path: string) =>
    action.run(async () => {
      await api(`/api/accounts/${encodeURIComponent(a.id)}/${path}`, { method: "POST" });
      invalidate("accounts");
    });
  const name = a.email ?? a.id;
  return (
    <tr data-account={name}>
      <th scope="row">
        {name}
        <div class="muted small">{a.planType ?? "unknown plan"}</div>
      </th>
      <td>
        <StatusBadge status={a.status} />
        {a.statusReason && <div class="reason small">{a.statusReason}</div>}
        {a.resetAt && <div class="muted small">until {time(a.resetAt)}</div>}
      </td>
      <td class="quotas">
        <QuotaBar label="5-hour" window={a.usage.primary} />
        <QuotaBar label="Weekly" window={a.usage.secondary} />
      </td>
      <td class="small">
        {a.health.usable ? "usable" : "not usable"}
        <div>
          {a.health.inFlight} in flight, {a.health.queued} queued
        </div>
        {a.health.backoffUntil && <div>backoff until {time(a.health.backoffUntil)}</div>}
        {a.health.failureStreak > 0 && <div>{a.health.failureStreak} failures in a row</div>}
        <div class="muted">refreshed {relative(a.lastRefreshAt)}</div>
      </td>
      <td>
        <label class="sr-only" for={`policy-${a.id}`}>
          Routing policy of {name}
        </label>
        <select
          id={`policy-${a.id}`}
          value={a.routingPolicy}
          onChange={(e) => {
            const routingPolicy = e.currentTarget.value;
            void action.run(async () => {
              await api(`/api/accounts/${encodeURIComponent(a.id)}`, {
                method: "PATCH",
                body: { routingPolicy },
              });
              invalidate("accounts");
            });
          }}
        >
          <option value="burn_first">burn first</option>
          <option value="normal">normal</option>
          <option value="preserve">preserve</option>
        </select>
      </td>
      <td>
        <div class="actions">
          {a.status === "paused" || a.status === "rate_limited" || a.status === "quota_exceeded" ? (
            <button
              type="button"
              disabled={action.busy}
              onClick={() => post("reactivate")}
              aria-label={`Resume ${name}`}
            >
              Resume
            </button>
          ) : a.status === "active" ? (
            <button
              type="button"
              disabled={action.busy}
              onClick={() => post("pause")}
              aria-label={`Pause ${name}`}
            >
              Pause
            </button>
          ) : null}
          {(a.status === "reauth_required" || a.status === "deactivated") && (
            <button
              type="button"
              aria-label={`Re-login ${name}`}
              onClick={() =>
                action.run(async () =>
                  props.onLogin(
                    await api<Flow>("/api/oauth/start", { method: "POST", body: { method: "browser" } }),
                  ),
                )
              }
            >
              Re-login
            </button>
          )}
          <button
            type="button"
            aria-label={`Export ${name}`}
            onClick={() =>
              action.run(async () => {
                const r = await api<{ codexAuthJson: unknown; filename: string }>(
                  `/api/accounts/${encodeURIComponent(a.id)}/export/auth`,
                  { method: "POST" },
                );
                download(r.filename, r.codexAuthJson);
              })
            }
          >
            Export
          </button>
          <button
            type="button"
            class="danger"
            aria-label={`Remove ${name}`}
            onClick={() => {
              if (!confirm(`Remove ${name} and its history?`)) return;
              void action.run(async () => {
                await api(`/api/accounts/${encodeURIComponent(a.id)}`, { method: "DELETE" });
                invalidate("accounts");
              });
            }}
          >
            Remove
          </button>
        </div>
        <ErrorText error={action.error} />
      </td>
    </tr>
  );
}

export function AccountsPage() {
  const q = useApi<{ accounts: Account[] }>("/api/accounts", ["accounts"]);
  const [flow, setFlow] = useState<Flow | null>(null);
  const start = useAction();
  const begin = (method: "browser" | "device") =>
    start.run(async () => setFlow(await api<Flow>("/api/oauth/start", { method: "POST", body: { method } })));
  return (
    <>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => begin("browser")} disabled={start.busy}>
          Sign in with a browser
        </button>
        <button type="button" onClick={() => begin("device")} disabled={start.busy}>
          Sign in with a device code
        </button>
        <ErrorText error={start.error} />
      </div>
      {flow && <LoginFlow flow={flow} onClose={() => setFlow(null)} />}
      <ImportForm />
      <ErrorText error={q.error} />
      <div class="table-wrap">
        <table>
          <caption class="sr-only">Accounts</caption>
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col">Status</th>
              <th scope="col">Quota</th>
              <th scope="col">Health</th>
              <th scope="col">Routing</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {q.data?.accounts.map((a) => (
              <AccountRow key={a.id} a={a} onLogin={setFlow} />
            ))}
          </tbody>
        </table>
      </div>
      {q.data && q.data.accounts.length === 0 && <p>No accounts yet: sign one in or import an auth.json.</p>}
    </>
  );
}
