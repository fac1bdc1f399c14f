/**
 * The model list: fetched from the upstream (`GET {upstream}/codex/models?client_version=…`) with
 * a usable account's credentials, cached for `modelsCacheSeconds`, and replaced by a built-in list
 * when the upstream cannot be reached. A fallback is never silent: each one is logged with its
 * reason, and the answer carries `x-codex-lb-models-source: fallback` (else `upstream`).
 *
 * @module
 */
import { sendUpstream } from "../upstream/client.ts";
import { buildUpstreamHeaders, CODEX_CLIENT_VERSION } from "../upstream/headers.ts";
import type { ProxyContext } from "./context.ts";
import { isUsable } from "./select.ts";
import { isObject, type Json } from "./validate.ts";

/** Served when the upstream list cannot be fetched. */
export const FALLBACK_MODELS: readonly Json[] = [
  "gpt-5.5",
  "gpt-5.4",
  "gpt-5.4-mini",
  "gpt-5.3-codex",
  "gpt-5.2",
].map((slug) => ({ slug, display_name: slug, supported_in_api: true, visibility: "list" }));

/** Where a model list came from; sent as the `x-codex-lb-models-source` response header. */
export const MODELS_SOURCE_HEADER = "x-codex-lb-models-source";

export interface ModelList {
  readonly at: number;
  readonly models: readonly Json[];
  readonly source: "upstream" | "fallback";
}
type Cached = ModelList;

const caches = new WeakMap<ProxyContext, Cached>();
const inflight = new WeakMap<ProxyContext, Promise<Cached>>();

async function fetchModels(ctx: ProxyContext): Promise<Cached> {
  const { services, settings, clock } = ctx.deps;
  const fallbackFor = (reason: string): Cached => {
    ctx.deps.log.warn(
      { reason, models: FALLBACK_MODELS.length },
      "model list: serving the built-in fallback",
    );
    return { at: clock(), models: FALLBACK_MODELS, source: "fallback" };
  };
  const now = services.now();
  const account = (await ctx.deps.services.accounts.list()).find((s) => isUsable(s, now));
  if (!account) return fallbackFor("no usable account");
  try {
    const creds = await services.provider("credentials").get(account.id, {});
    const res = await sendUpstream(`${ctx.upstreamUrl}/codex/models?client_version=${CODEX_CLIENT_VERSION}`, {
      method: "GET",
      headers: buildUpstreamHeaders(new Headers(), creds, {
        requestId: ctx.deps.random.uuid(),
        accept: "application/json",
      }),
      connectTimeoutMs: settings.upstreamConnectTimeoutSeconds * 1000,
      timers: ctx.deps.time,
      client: settings.upstreamClient,
    });
    if (!res.ok) return fallbackFor(`upstream unreachable: ${res.failure.errorCode ?? "transport error"}`);
    if (!res.response.ok) return fallbackFor(`upstream answered HTTP ${res.response.status}`);
    const body = (await res.response.json()) as unknown;
    const models = isObject(body) && Array.isArray(body.models) ? body.models.filter(isObject) : [];
    if (models.length === 0) return fallbackFor("upstream list empty or malformed");
    return { at: clock(), models, source: "upstream" };
  } catch (e) {
    return fallbackFor(e instanceof Error ? e.message.split("\n")[0]! : String(e));
  }
}

/** The upstream model entries (cached; a failed fetch is retried after a short while, not every call). */
export async function modelEntries(ctx: ProxyContext): Promise<readonly Json[]> {
  return (await modelList(ctx)).models;
}

/** The model list with where it came from (`upstream`, or the built-in `fallback`). */
export async function modelList(ctx: ProxyContext): Promise<ModelList> {
  const ttl = ctx.deps.settings.modelsCacheSeconds * 1000;
  const cached = caches.get(ctx);
  const now = ctx.deps.clock();
  // A fallback is kept briefly so an unreachable upstream is asked again soon.
  const life = cached?.source === "fallback" ? Math.min(ttl, 30_000) : ttl;
  if (cached && now - cached.at < life) return cached;
  let p = inflight.get(ctx);
  if (!p) {
    p = fetchModels(ctx).finally(() => inflight.delete(ctx));
    inflight.set(ctx, p);
  }
  const fresh = await p;
  caches.set(ctx, fresh);
  return fresh;
}

/** An OpenAI `model` object for an upstream entry. */
export function openAiModel(m: Json, created: number): Json {
  return { id: m.slug, object: "model", created, owned_by: "codex-lb" };
}

/** Entries a `/v1/models` client may use. */
export function listed(models: readonly Json[]): Json[] {
  return models.filter(
    (m) => typeof m.slug === "string" && m.supported_in_api !== false && (m.visibility ?? "list") !== "hide",
  );
}
