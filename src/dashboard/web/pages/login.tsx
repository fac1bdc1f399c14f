/** First-run (set the password) and login (password, then a TOTP or recovery code when enabled). */
import { useState } from "preact/hooks";
import { api } from "../api.ts";
import { ErrorText, useAction } from "../components/ui.tsx";

export interface SessionState {
  authenticated: boolean;
  passwordSet: boolean;
  totpEnabled: boolean;
  local: boolean;
  bootstrapRequired: boolean;
}

/** Where to go after logging in: `?next=/docs` is honoured for same-origin paths only. */
function afterLogin(): void {
  const next = new URLSearchParams(location.search).get("next");
  if (next?.startsWith("/") && !next.startsWith("//")) location.assign(next);
}

export function SetupPage(props: { session: SessionState; onDone: () => void }) {
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [token, setToken] = useState("");
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    if (password !== confirm) {
      action.setError(new Error("The two passwords differ"));
      return;
    }
    void action.run(async () => {
      await api("/api/auth/password", {
        method: "POST",
        body: {
          newPassword: password,
          ...(props.session.bootstrapRequired ? { bootstrapToken: token } : {}),
        },
      });
      props.onDone();
    });
  };
  return (
    <main class="center">
      <form class="card auth" onSubmit={submit}>
        <h1>Welcome to codex-lb</h1>
        <p>
          Set the admin password. From then on the dashboard, the admin API and the API docs need a login.
        </p>
        {props.session.bootstrapRequired && (
          <p>
            You are not on the gateway's machine: enter the one-time <strong>bootstrap token</strong> printed
            in the gateway's log.
          </p>
        )}
        <label>
          New password (at least 8 characters)
          <input
            type="password"
            autocomplete="new-password"
            minLength={8}
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <label>
          Repeat the password
          <input
            type="password"
            autocomplete="new-password"
            required
            value={confirm}
            onInput={(e) => setConfirm(e.currentTarget.value)}
          />
        </label>
        {props.session.bootstrapRequired && (
          <label>
            Bootstrap token
            <input type="text" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
          </label>
        )}
        <ErrorText error={action.error} />
        <button type="submit" class="primary" disabled={action.busy}>
          Set password
        </button>
      </form>
    </main>
  );
}

export function LoginPage(props: { session: SessionState; onDone: () => void }) {
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [useRecovery, setUseRecovery] = useState(false);
  const action = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const body: Record<string, string> = { password };
      if (props.session.totpEnabled) body[useRecovery ? "recoveryCode" : "totpCode"] = code.trim();
      await api("/api/auth/login", { method: "POST", body });
      afterLogin();
      props.onDone();
    });
  };
  return (
    <main class="center">
      <form class="card auth" onSubmit={submit}>
        <h1>Log in to codex-lb</h1>
        <label>
          Password
          <input
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {props.session.totpEnabled && (
          <>
            <label>
              {useRecovery ? "Recovery code" : "Authenticator code"}
              <input
                type="text"
                inputMode={useRecovery ? "text" : "numeric"}
                autocomplete="one-time-code"
                required
                value={code}
                onInput={(e) => setCode(e.currentTarget.value)}
              />
            </label>
            <button type="button" class="link" onClick={() => setUseRecovery(!useRecovery)}>
              {useRecovery ? "Use an authenticator code" : "Use a recovery code instead"}
            </button>
          </>
        )}
        <ErrorText error={action.error} />
        <button type="submit" class="primary" disabled={action.busy}>
          Log in
        </button>
      </form>
    </main>
  );
}
