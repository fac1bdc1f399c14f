/** Small shared pieces: quota bars, status badges, errors, copy button, a dialog-like panel. */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { ApiError } from "../api.ts";
import { relative, statusLabel } from "../format.ts";

export interface UsageWindow {
  usedPercent: number;
  windowMinutes: number | null;
  resetAt: number | null;
}

/** A quota window as a bar with its reset time. */
export function QuotaBar(props: { label: string; window: UsageWindow | null }) {
  const w = props.window;
  if (!w) return <div class="quota muted">{props.label}: no data yet</div>;
  const used = Math.max(0, Math.min(100, w.usedPercent));
  const level = used >= 90 ? "high" : used >= 70 ? "mid" : "low";
  return (
    <div class="quota">
      <div class="quota-head">
        <span>{props.label}</span>
        <span>{used.toFixed(0)}% used</span>
      </div>
      <div
        class={`bar ${level}`}
        role="progressbar"
        aria-label={`${props.label} quota used`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(used)}
      >
        <div class="fill" style={{ width: `${used}%` }} />
      </div>
      <div class="quota-reset muted">
        {w.resetAt ? `resets ${relative(w.resetAt)}` : "reset time unknown"}
      </div>
    </div>
  );
}

export function StatusBadge(props: { status: string }) {
  return <span class={`badge status-${props.status}`}>{statusLabel[props.status] ?? props.status}</span>;
}

export function ErrorText(props: { error: ApiError | Error | string | null | undefined }) {
  if (!props.error) return null;
  const text = typeof props.error === "string" ? props.error : props.error.message;
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

export function CopyButton(props: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(props.text);
          setDone(true);
        } catch {
          setDone(false);
        }
      }}
    >
      {done ? "Copied" : (props.label ?? "Copy")}
    </button>
  );
}

export function Panel(props: {
  title: string;
  children: ComponentChildren;
  onClose?: () => void;
  id?: string;
}) {
  return (
    <section class="panel" aria-label={props.title} id={props.id}>
      <div class="panel-head">
        <h2>{props.title}</h2>
        {props.onClose && (
          <button type="button" onClick={props.onClose}>
            Close
          </button>
        )}
      </div>
      {props.children}
    </section>
  );
}

/** Runs an async action, keeping its error and busy state for the form that started it. */
export function useAction(): {
  busy: boolean;
  error: Error | null;
  run: (fn: () => Promise<void>) => Promise<void>;
  setError: (e: Error | null) => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  return {
    busy,
    error,
    setError,
    run: async (fn) => {
      setBusy(true);
      setError(null);
      try {
        await fn();
      } catch (e) {
        setError(e instanceof Error ? e : new Error(String(e)));
      } finally {
        setBusy(false);
      }
    },
  };
}
