/**
 * The gateway's Prometheus metrics: what the proxy, the attempt loop and the hook dispatcher report
 * (counters and histograms updated as things happen), and what is read when scraped (account
 * status, quota windows, streams in flight, request-log queue). Label values are bounded: account
 * and API key ids come from the store, models are capped at {@link MAX_MODELS} distinct names,
 * statuses and reasons come from fixed tables.
 *
 * @module
 */
import { isUsable } from "../core/health.ts";
import { type AccountSnapshot, accountStatuses } from "../core/types.ts";
import { BoundedValues, Counter, Gauge, Histogram, type HistogramSeries, Registry } from "./registry.ts";

/** Distinct model names kept as label values; later ones are counted as `other`. */
export const MAX_MODELS = 100;

/** Seconds: a streamed answer can last minutes. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
const WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

export interface RequestDone {
  /** `responses`, `chat`, `codex`, … (the endpoint family, from a fixed list). */
  readonly endpoint: string;
  readonly status: number;
  readonly model: string | null;
  readonly accountId: string | null;
  readonly apiKeyId: string | null;
  readonly durationMs: number;
  readonly ttfbMs: number | null;
  readonly inputTokens: number | null;
  readonly cachedInputTokens: number | null;
  readonly outputTokens: number | null;
  readonly reasoningTokens: number | null;
  readonly costUsd: number | null;
}

/** Label sets whose series {@link GatewayMetrics.request} keeps at hand (then it starts afresh). */
const BUNDLES_KEPT = 4096;

type CounterSeries = { v: number };

/**
 * The series one kind of request updates (same endpoint, status, model, account and key): found
 * with one map lookup instead of one label-key join per series. The time-to-first-token, token and
 * cost series are made when first observed, as before (a series exists once it was counted).
 */
interface RequestSeries {
  readonly requests: CounterSeries;
  readonly duration: HistogramSeries;
  ttft: HistogramSeries | null;
  input: CounterSeries | null;
  cachedInput: CounterSeries | null;
  output: CounterSeries | null;
  reasoning: CounterSeries | null;
  cost: CounterSeries | null;
}

/** What scrape-time gauges read from the running gateway. */
export interface MetricsSources {
  accounts(): Promise<readonly AccountSnapshot[]>;
  inFlight(accountId: string): number;
  queued(accountId: string): number;
  requestLogQueue(): number;
  requestLogDropped(): number;
  now(): number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #models = new BoundedValues(MAX_MODELS);
  readonly #actionTypes = new BoundedValues(64);
  readonly #bundles = new Map<string, RequestSeries>();
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly ttft: Histogram;
  readonly tokens: Counter;
  readonly cost: Counter;
  readonly queueWait: Histogram;
  readonly failovers: Counter;
  readonly refreshes: Counter;
  readonly hookActions: Counter;
  readonly applied: Counter;

  constructor(sources: MetricsSources) {
    const r = this.registry;
    this.requests = r.add(
      new Counter(
        "codex_lb_requests_total",
        "Proxied requests by endpoint, HTTP status, model, account and API key.",
        ["endpoint", "status", "model", "account", "api_key"],
      ),
    );
    this.duration = r.add(
      new Histogram(
        "codex_lb_request_duration_seconds",
        "Proxied request duration, to the end of the stream.",
        ["endpoint"],
        DURATION_BUCKETS,
      ),
    );
    this.ttft = r.add(
      new Histogram(
        "codex_lb_time_to_first_token_seconds",
        "Time from the request to the upstream's first real event (first token).",
        ["endpoint"],
        TTFT_BUCKETS,
      ),
    );
    this.tokens = r.add(
      new Counter("codex_lb_tokens_total", "Tokens reported by the upstream, by kind, model and account.", [
        "kind",
        "model",
        "account",
      ]),
    );
    this.cost = r.add(
      new Counter(
        "codex_lb_cost_usd_total",
        "Estimated cost in US dollars (pricing table), by model and API key.",
        ["model", "api_key"],
      ),
    );
    this.queueWait = r.add(
      new Histogram(
        "codex_lb_queue_wait_seconds",
        "Time a request waited for a stream slot on its account, by outcome (acquired, refused).",
        ["outcome"],
        WAIT_BUCKETS,
      ),
    );
    this.failovers = r.add(
      new Counter(
        "codex_lb_failovers_total",
        "Requests moved to another account after a failure, by failure phase (http, sse, transport, lease).",
        ["phase"],
      ),
    );
    this.refreshes = r.add(
      new Counter(
        "codex_lb_token_refreshes_total",
        "OAuth token refreshes by outcome (saved, stale, missing, failed).",
        ["outcome"],
      ),
    );
    this.hookActions = r.add(
      new Counter(
        "codex_lb_hook_actions_total",
        "Actions returned by plugin hook handlers, by hook and action type.",
        ["hook", "type"],
      ),
    );
    this.applied = r.add(
      new Counter(
        "codex_lb_actions_applied_total",
        "Account actions by type and what the core did with them.",
        ["type", "result"],
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_account_status",
        "1 for the status each account is in, 0 for the others.",
        ["account", "status"],
        async () => {
          const rows: [string[], number][] = [];
          for (const a of await sources.accounts())
            for (const s of accountStatuses) rows.push([[a.id, s], a.status === s ? 1 : 0]);
          return rows;
        },
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_account_usable",
        "1 when the account may serve a request now.",
        ["account"],
        async () => {
          const now = sources.now();
          return (await sources.accounts()).map((a) => [[a.id], isUsable(a, now) ? 1 : 0] as const);
        },
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_account_quota_used_percent",
        "Quota used in each window (primary, secondary) as last seen.",
        ["account", "window"],
        async () => {
          const rows: [string[], number][] = [];
          for (const a of await sources.accounts()) {
            if (a.primary) rows.push([[a.id, "primary"], a.primary.usedPercent]);
            if (a.secondary) rows.push([[a.id, "secondary"], a.secondary.usedPercent]);
          }
          return rows;
        },
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_in_flight_streams",
        "Streams in flight per account (this process).",
        ["account"],
        async () => (await sources.accounts()).map((a) => [[a.id], sources.inFlight(a.id)] as const),
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_queued_requests",
        "Requests waiting for a stream slot per account.",
        ["account"],
        async () => (await sources.accounts()).map((a) => [[a.id], sources.queued(a.id)] as const),
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_request_log_queue_depth",
        "Request-log rows queued and not yet written.",
        [],
        () => [[[], sources.requestLogQueue()]],
      ),
    );
    r.add(
      new Gauge(
        "codex_lb_request_log_dropped_rows",
        "Request-log rows dropped because a write failed.",
        [],
        () => [[[], sources.requestLogDropped()]],
      ),
    );
  }

  /** One proxied request is over (its stream ended). */
  request(d: RequestDone): void {
    const model = this.#models.of(d.model);
    const account = d.accountId ?? "none";
    const apiKey = d.apiKeyId ?? "none";
    const key = `${d.endpoint}\u0001${d.status}\u0001${model}\u0001${account}\u0001${apiKey}`;
    let b = this.#bundles.get(key);
    if (b === undefined) {
      if (this.#bundles.size >= BUNDLES_KEPT) this.#bundles.clear();
      b = {
        requests: this.requests.get([d.endpoint, String(d.status), model, account, apiKey]),
        duration: this.duration.get([d.endpoint]),
        ttft: null,
        input: null,
        cachedInput: null,
        output: null,
        reasoning: null,
        cost: null,
      };
      this.#bundles.set(key, b);
    }
    b.requests.v++;
    this.duration.observeIn(b.duration, d.durationMs / 1000);
    if (d.ttfbMs !== null) {
      b.ttft ??= this.ttft.get([d.endpoint]);
      this.ttft.observeIn(b.ttft, d.ttfbMs / 1000);
    }
    if (d.inputTokens) {
      b.input ??= this.tokens.get(["input", model, account]);
      b.input.v += d.inputTokens;
    }
    if (d.cachedInputTokens) {
      b.cachedInput ??= this.tokens.get(["cached_input", model, account]);
      b.cachedInput.v += d.cachedInputTokens;
    }
    if (d.outputTokens) {
      b.output ??= this.tokens.get(["output", model, account]);
      b.output.v += d.outputTokens;
    }
    if (d.reasoningTokens) {
      b.reasoning ??= this.tokens.get(["reasoning", model, account]);
      b.reasoning.v += d.reasoningTokens;
    }
    if (d.costUsd) {
      b.cost ??= this.cost.get([model, apiKey]);
      b.cost.v += d.costUsd;
    }
  }

  /** Actions returned by a hook's handlers. */
  actions(hook: string, actions: readonly { readonly type: string }[]): void {
    for (const a of actions) this.hookActions.inc([hook, this.#actionTypes.of(a.type)]);
  }
}
