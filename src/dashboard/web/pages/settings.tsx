/** Settings: routing strategy, sticky TTL, API-key auth, firewall, password, TOTP (with a QR code), sessions, audit log. */

import { useEffect, useState } from "preact/hooks";
import qrcode from "qrcode-generator";
import { api, invalidate, useApi } from "../api.ts";
import { ErrorText, Panel, useAction } from "../components/ui.tsx";
import { time } from "../format.ts";
import type { SessionState } from "./login.tsx";

interface RuntimeSettings {
  routingStrategy: string;
  stickyTtlSeconds: number;
  apiKeyAuthEnabled: boolean;
  version: number;
}

function RoutingForm() {
  const q = useApi<RuntimeSettings>("/api/settings", ["settings"]);
  const [draft, setDraft] = useState<RuntimeSettings | null>(null);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  useEffect(() => {
    if (q.data) setDraft(q.data);
  }, [q.data]);
  if (!draft) return <ErrorText error={q.error} />;
  return (
    <form
      class="card form"
      aria-label="Routing and access"
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        void action.run(async () => {
          await api("/api/settings", {
            method: "PUT",
            body: {
              expectedVersion: q.data?.version,
              routingStrategy: draft.routingStrategy,
              stickyTtlSeconds: draft.stickyTtlSeconds,
              apiKeyAuthEnabled: draft.apiKeyAuthEnabled,
            },
          });
          setSaved(true);
          invalidate("settings");
        });
      }}
    >
      <h2>Routing and access</h2>
      <label>
        Routing strategy
        <select
          value={draft.routingStrategy}
          onChange={(e) => setDraft({ ...draft, routingStrategy: e.currentTarget.value })}
        >
          <option value="capacity_weighted">capacity weighted</option>
          <option value="usage_weighted">usage weighted</option>
          <option value="round_robin">round robin</option>
          <option value="fill_first">fill first</option>
        </select>
      </label>
      <label>
        Sticky session lifetime (seconds)
        <input
          type="number"
          min="1"
          max={30 * 24 * 3600}
          required
          value={draft.stickyTtlSeconds}
          onInput={(e) => setDraft({ ...draft, stickyTtlSeconds: Number(e.currentTarget.value) })}
        />
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={draft.apiKeyAuthEnabled}
          onChange={(e) => setDraft({ ...draft, apiKeyAuthEnabled: e.currentTarget.checked })}
        />
        Require an API key from every proxy client
      </label>
      <ErrorText error={action.error} />
      <div class="row">
        <button type="submit" class="primary" disabled={action.busy}>
          Save
        </button>
        {saved && <span role="status">Saved</span>}
      </div>
    </form>
  );
}

function FirewallForm() {
  const q = useApi<{ mode: string; entries: { entry: string; createdAt: number }[] }>("/api/firewall", [
    "firewall",
  ]);
  const [entry, setEntry] = useState("");
  const action = useAction();
  return (
    <section class="card form" aria-label="Firewall">
      <h2>Firewall</h2>
      <p class="muted">
        {q.data?.mode === "allowlist"
          ? "Only these addresses may use the proxy routes."
          : "Every address may use the proxy routes (API-key rules still apply)."}
      </p>
      <ul class="plain">
        {q.data?.entries.map((e) => (
          <li key={e.entry} class="row">
            <code>{e.entry}</code>
            <button
              type="button"
              aria-label={`Remove ${e.entry}`}
              onClick={() =>
                action.run(async () => {
                  await api(`/api/firewall/entries?entry=${encodeURIComponent(e.entry)}`, {
                    method: "DELETE",
                  });
                  invalidate("firewall");
                  q.reload();
                })
              }
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            await api("/api/firewall/entries", { method: "POST", body: { entry: entry.trim() } });
            setEntry("");
            invalidate("firewall");
            q.reload();
          });
        }}
      >
        <label class="grow">
          Address or CIDR range
          <input type="text" required value={entry} onInput={(e) => setEntry(e.currentTarget.value)} />
        </label>
        <button type="submit">Add</button>
      </form>
      <ErrorText error={action.error} />
    </section>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [done, setDone] = useState(false);
  const action = useAction();
  return (
    <form
      class="card form"
      aria-label="Change the password"
      onSubmit={(e) => {
        e.preventDefault();
        setDone(false);
        void action.run(async () => {
          await api("/api/auth/password", {
            method: "POST",
            body: { currentPassword: current, newPassword: next },
          });
          setCurrent("");
          setNext("");
          setDone(true);
        });
      }}
    >
      <h2>Password</h2>
      <label>
        Current password
        <input
          type="password"
          autocomplete="current-password"
          required
          value={current}
          onInput={(e) => setCurrent(e.currentTarget.value)}
        />
      </label>
      <label>
        New password (at least 8 characters)
        <input
          type="password"
          autocomplete="new-password"
          minLength={8}
          required
          value={next}
          onInput={(e) => setNext(e.currentTarget.value)}
        />
      </label>
      <ErrorText error={action.error} />
      <div class="row">
        <button type="submit">Change password</button>
        {done && <span role="status">Password changed; other sessions were logged out.</span>}
      </div>
    </form>
  );
}

/** The otpauth URI as a QR code image (generated here, no request anywhere). */
function Qr(props: { text: string }) {
  const qr = qrcode(0, "M");
  qr.addData(props.text);
  qr.make();
  return (
    <img
      class="qr"
      src={qr.createDataURL(4, 8)}
      alt="QR code for the authenticator app"
      width={200}
      height={200}
    />
  );
}

function TotpForm() {
  const session = useApi<SessionState>("/api/auth/session", ["settings"]);
  const [setup, setSetup] = useState<{ secret: string; otpauthUri: string } | null>(null);
  const [code, setCode] = useState("");
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const action = useAction();
  const enabled = session.data?.totpEnabled ?? false;
  return (
    <section class="card form" aria-label="Two-factor authentication">
      <h2>Two-factor authentication (TOTP)</h2>
      <p>{enabled ? "TOTP is on: logging in needs a code from the authenticator app." : "TOTP is off."}</p>
      {recovery && (
        <Panel title="Recovery codes" onClose={() => setRecovery(null)}>
          <p>
            Store these codes now: each logs in once without the authenticator, and they are shown only once.
          </p>
          <ul class="codes" data-testid="recovery-codes">
            {recovery.map((r) => (
              <li key={r} class="mono">
                {r}
              </li>
            ))}
          </ul>
        </Panel>
      )}
      {!enabled && !setup && (
        <button
          type="button"
          onClick={() =>
            action.run(async () => setSetup(await api("/api/auth/totp/setup", { method: "POST" })))
          }
        >
          Set up TOTP
        </button>
      )}
      {setup && (
        <>
          <Qr text={setup.otpauthUri} />
          <p>
            Scan the code, or enter the secret <code data-testid="totp-secret">{setup.secret}</code> by hand.
          </p>
        </>
      )}
      {(setup || enabled) && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => {
              if (enabled) {
                await api("/api/auth/totp/disable", { method: "POST", body: { code: code.trim() } });
              } else {
                const r = await api<{ recoveryCodes: string[] }>("/api/auth/totp/confirm", {
                  method: "POST",
                  body: { code: code.trim() },
                });
                setRecovery(r.recoveryCodes);
                setSetup(null);
              }
              setCode("");
              invalidate("settings");
              session.reload();
            });
          }}
        >
          <label class="grow">
            Code from the authenticator app
            <input
              type="text"
              inputMode="numeric"
              autocomplete="one-time-code"
              required
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </label>
          <button type="submit">{enabled ? "Turn TOTP off" : "Turn TOTP on"}</button>
        </form>
      )}
      <ErrorText error={action.error} />
    </section>
  );
}

function SessionsForm() {
  const q = useApi<{
    sessions: {
      createdAt: number;
      lastSeenAt: number;
      expiresAt: number;
      clientIp: string | null;
      current: boolean;
    }[];
  }>("/api/auth/sessions", ["settings"]);
  const action = useAction();
  return (
    <section class="card form" aria-label="Sessions">
      <h2>Sessions</h2>
      <ul class="plain">
        {q.data?.sessions.map((s) => (
          <li key={s.createdAt}>
            {s.clientIp ?? "unknown address"}, logged in {time(s.createdAt)}, last seen {time(s.lastSeenAt)}
            {s.current ? " (this session)" : ""}
          </li>
        ))}
      </ul>
      <button
        type="button"
        class="danger"
        onClick={() =>
          action.run(async () => {
            await api("/api/auth/sessions/revoke-all", { method: "POST" });
            location.assign("/dashboard");
          })
        }
      >
        Log out everywhere
      </button>
      <ErrorText error={action.error ?? q.error} />
    </section>
  );
}

function AuditLog() {
  const q = useApi<{
    items: {
      id: number;
      at: number;
      action: string;
      actorIp: string | null;
      details: Record<string, unknown> | null;
    }[];
  }>("/api/audit-logs?limit=50", ["audit", "settings", "api-keys", "accounts", "firewall"]);
  return (
    <section aria-label="Audit log">
      <h2>Audit log</h2>
      <ErrorText error={q.error} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">From</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {q.data?.items.map((r) => (
              <tr key={r.id}>
                <td>{time(r.at)}</td>
                <td class="mono">{r.action}</td>
                <td>{r.actorIp ?? "–"}</td>
                <td class="mono small">{r.details ? JSON.stringify(r.details) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function SettingsPage() {
  return (
    <>
      <div class="grid">
        <RoutingForm />
        <FirewallForm />
        <PasswordForm />
        <TotpForm />
        <SessionsForm />
      </div>
      <AuditLog />
    </>
  );
}
