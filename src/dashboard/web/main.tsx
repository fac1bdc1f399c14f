/**
 * The dashboard's entry: the session check (first-run page, login, or the app), the navigation,
 * the theme switch and the page router (paths under `/dashboard/`).
 *
 * @module
 */
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, connectEvents, disconnectEvents, setOnUnauthenticated, useLive } from "./api.ts";
import { AccountsPage } from "./pages/accounts.tsx";
import { ApiKeysPage } from "./pages/api-keys.tsx";
import { LoginPage, type SessionState, SetupPage } from "./pages/login.tsx";
import { OverviewPage } from "./pages/overview.tsx";
import { RequestsPage } from "./pages/requests.tsx";
import { SettingsPage } from "./pages/settings.tsx";
import { UsagePage } from "./pages/usage.tsx";

const pages = [
  { path: "overview", title: "Overview", view: OverviewPage },
  { path: "accounts", title: "Accounts", view: AccountsPage },
  { path: "requests", title: "Requests", view: RequestsPage },
  { path: "usage", title: "Usage", view: UsagePage },
  { path: "api-keys", title: "API keys", view: ApiKeysPage },
  { path: "settings", title: "Settings", view: SettingsPage },
] as const;

/** The page named by the address: `/dashboard/<page>`; `/` and `/dashboard` are the overview. */
function currentPage(): string {
  const m = /^\/dashboard\/([a-z-]+)/.exec(location.pathname);
  return m?.[1] ?? "overview";
}

/** Navigates inside the app without reloading. */
export function navigate(path: string): void {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

type Theme = "light" | "dark";
function initialTheme(): Theme {
  const saved = localStorage.getItem("codex-lb-theme");
  if (saved === "light" || saved === "dark") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function App() {
  const [session, setSession] = useState<SessionState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [page, setPage] = useState(currentPage());
  const [theme, setTheme] = useState<Theme>(initialTheme());
  const [menuOpen, setMenuOpen] = useState(false);
  const live = useLive();

  const refreshSession = useCallback(async () => {
    try {
      setSession(await api<SessionState>("/api/auth/session"));
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, []);

  useEffect(() => {
    void refreshSession();
    setOnUnauthenticated(() => {
      disconnectEvents();
      void refreshSession();
    });
    const onPop = () => {
      setPage(currentPage());
      setMenuOpen(false);
    };
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, [refreshSession]);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("codex-lb-theme", theme);
  }, [theme]);

  useEffect(() => {
    if (session?.authenticated) connectEvents();
  }, [session?.authenticated]);

  const current = pages.find((p) => p.path === page) ?? pages[0];
  useEffect(() => {
    document.title = session?.authenticated ? `${current.title} · codex-lb` : "codex-lb";
  }, [current, session?.authenticated]);

  if (error)
    return (
      <main class="center">
        <p role="alert">Cannot reach the gateway: {error}</p>
      </main>
    );
  if (!session)
    return (
      <main class="center">
        <p>Loading…</p>
      </main>
    );
  if (!session.passwordSet && !session.authenticated)
    return <SetupPage session={session} onDone={refreshSession} />;
  if (!session.authenticated) return <LoginPage session={session} onDone={refreshSession} />;
  if (!session.passwordSet) return <SetupPage session={session} onDone={refreshSession} />;

  const logout = async () => {
    // The live stream first: once the session is gone the browser would reconnect it and get 401s.
    disconnectEvents();
    await api("/api/auth/logout", { method: "POST" });
    await refreshSession();
  };
  const View = current.view;
  return (
    <div class="layout">
      <a class="skip" href="#content">
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">codex-lb</span>
        <button
          type="button"
          class="menu-button"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <nav id="nav" aria-label="Pages" class={menuOpen ? "open" : ""}>
          <ul>
            {pages.map((p) => (
              <li key={p.path}>
                <a
                  href={`/dashboard/${p.path}`}
                  aria-current={p.path === current.path ? "page" : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(`/dashboard/${p.path}`);
                  }}
                >
                  {p.title}
                </a>
              </li>
            ))}
            <li>
              <a href="/docs">API docs</a>
            </li>
          </ul>
        </nav>
        <span class={live ? "live on" : "live"} title="Live updates from /api/events">
          {live ? "● Live" : "○ Offline"}
        </span>
        <button type="button" onClick={() => setTheme(theme === "dark" ? "light" : "dark")}>
          {theme === "dark" ? "Light theme" : "Dark theme"}
        </button>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="content" tabIndex={-1}>
        <h1>{current.title}</h1>
        <View />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
