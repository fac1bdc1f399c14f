/**
 * The dashboard's data layer: one `api()` for the documented admin API (JSON in, JSON out, the
 * error envelope turned into an `ApiError`), a small query cache with `useApi` (a key is a GET
 * path; data is refetched when a live event names its topic), and the one `EventSource` on
 * `/api/events`. No polling: pages refresh when the server says something changed.
 *
 * @module
 */
import { useEffect, useState } from "preact/hooks";

/** A non-2xx answer of the admin API. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Calls the admin API; throws {@link ApiError} on a non-2xx answer. */
export async function api<T = unknown>(
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  let body: BodyInit | undefined;
  if (init.body instanceof FormData) body = init.body;
  else if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.body);
  }
  const res = await fetch(path, { method: init.method ?? "GET", headers, body, credentials: "same-origin" });
  const text = await res.text();
  const data = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    if (res.status === 401 && !path.startsWith("/api/auth/")) onUnauthenticated();
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? res.statusText);
  }
  return data as T;
}

let unauthenticated: () => void = () => {};
/** Called when a request answers 401 (the session ended): the app shows the login page. */
export function setOnUnauthenticated(fn: () => void): void {
  unauthenticated = fn;
}
function onUnauthenticated() {
  unauthenticated();
}

/** Live topics the server announces on `/api/events`. */
export type Topic = "requests" | "accounts" | "settings" | "api-keys" | "firewall" | "audit";

interface Entry {
  data?: unknown;
  error?: ApiError;
  loading: boolean;
  promise?: Promise<void>;
  subs: Set<() => void>;
  topics: Topic[];
}
const cache = new Map<string, Entry>();

async function load(key: string): Promise<void> {
  const e = cache.get(key);
  if (!e) return;
  if (e.promise) return e.promise;
  e.loading = true;
  e.promise = (async () => {
    try {
      e.data = await api(key);
      e.error = undefined;
    } catch (err) {
      e.error = err instanceof ApiError ? err : new ApiError(0, "network", String(err));
    } finally {
      e.loading = false;
      e.promise = undefined;
      for (const fn of e.subs) fn();
    }
  })();
  return e.promise;
}

/** Refetches every cached GET that listens to `topic` (or whose key starts with a prefix). */
export function invalidate(topicOrPrefix: string): void {
  for (const [key, e] of cache) {
    if (e.subs.size === 0) {
      if (e.topics.includes(topicOrPrefix as Topic) || key.startsWith(topicOrPrefix)) cache.delete(key);
      continue;
    }
    if (e.topics.includes(topicOrPrefix as Topic) || key.startsWith(topicOrPrefix)) void load(key);
  }
}

/** Data of a GET path, refetched when one of `topics` changes. `key` null = nothing to load. */
export function useApi<T>(
  key: string | null,
  topics: Topic[] = [],
): { data: T | undefined; error: ApiError | undefined; loading: boolean; reload: () => void } {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (key === null) return;
    let e = cache.get(key);
    if (!e) {
      e = { loading: true, subs: new Set(), topics };
      cache.set(key, e);
      void load(key);
    }
    const fn = () => setTick((n) => n + 1);
    e.subs.add(fn);
    fn();
    return () => {
      e.subs.delete(fn);
    };
  }, [key]);
  const e = key === null ? undefined : cache.get(key);
  return {
    data: e?.data as T | undefined,
    error: e?.error,
    loading: e?.loading ?? key !== null,
    reload: () => {
      if (key !== null) void load(key);
    },
  };
}

let source: EventSource | null = null;
const listeners = new Set<(topic: Topic, data: unknown) => void>();
let live = false;
const liveSubs = new Set<(live: boolean) => void>();

/** Opens the live event stream (once); every event refreshes the queries of its topic. */
export function connectEvents(): void {
  if (source) return;
  source = new EventSource("/api/events");
  source.onopen = () => setLive(true);
  source.onerror = () => setLive(false);
  for (const topic of ["requests", "accounts", "settings", "api-keys", "firewall", "audit"] as Topic[]) {
    source.addEventListener(topic, (ev) => {
      const data = (() => {
        try {
          return JSON.parse((ev as MessageEvent<string>).data) as unknown;
        } catch {
          return null;
        }
      })();
      invalidate(topic);
      for (const fn of listeners) fn(topic, data);
    });
  }
}

/** Closes the live event stream (on logout). */
export function disconnectEvents(): void {
  source?.close();
  source = null;
  setLive(false);
  cache.clear();
}

function setLive(v: boolean) {
  live = v;
  for (const fn of liveSubs) fn(v);
}

/** Whether the live stream is connected. */
export function useLive(): boolean {
  const [v, setV] = useState(live);
  useEffect(() => {
    liveSubs.add(setV);
    return () => {
      liveSubs.delete(setV);
    };
  }, []);
  return v;
}

/** Calls `fn` for each live event while the component is mounted. */
export function useEvents(fn: (topic: Topic, data: unknown) => void): void {
  useEffect(() => {
    listeners.add(fn);
    return () => {
      listeners.delete(fn);
    };
  }, [fn]);
}
