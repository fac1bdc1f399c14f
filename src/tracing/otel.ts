/**
 * The OpenTelemetry side of {@link RequestTracer}: the official API and trace SDK, a batch span
 * processor and the OTLP/HTTP (JSON) exporter. Imported only when trace export is on.
 *
 * @module
 */
import {
  type Attributes,
  context,
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { Logger } from "../core/logging.ts";
import type { RequestTracer, SpanFacts } from "./tracing.ts";

const propagator = new W3CTraceContextPropagator();

/**
 * `headers` as the OTLP exporter must be handed them: it copies them into a plain object by
 * assignment, where a header named `__proto__` would set the copy's prototype and never be sent.
 * Header names are case-insensitive (RFC 9110), so that one goes as `__PROTO__`.
 */
export function exporterHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name === "__proto__" ? "__PROTO__" : name] = value;
  return out;
}

export class OtelTracer implements RequestTracer {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;
  readonly #log: Logger;

  constructor(opts: {
    url: string;
    headers: Record<string, string>;
    version: string;
    log: Logger;
    /** Share of root requests traced (default 1); a client's sampled flag decides for its requests. */
    sampleRatio?: number;
  }) {
    this.#log = opts.log;
    const exporter = new OTLPTraceExporter({ url: opts.url, headers: exporterHeaders(opts.headers) });
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ "service.name": "codex-lb", "service.version": opts.version }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(opts.sampleRatio ?? 1) }),
      // Bounded: at most 2,048 spans wait for export; past that new spans are dropped, never queued.
      spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: 2048, scheduledDelayMillis: 1000 })],
    });
    this.#tracer = this.#provider.getTracer("codex-lb", opts.version);
  }

  requestDone(f: SpanFacts): void {
    try {
      const carrier: Record<string, string> = {};
      if (f.traceparent) carrier.traceparent = f.traceparent;
      if (f.tracestate) carrier.tracestate = f.tracestate;
      const parent = f.traceparent
        ? propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter)
        : ROOT_CONTEXT;
      const attributes: Attributes = {
        "http.request.method": f.method,
        "url.path": f.path,
        "http.response.status_code": f.httpStatus,
        "gen_ai.request.model": f.model,
        "codex_lb.request_id": f.requestId,
        "codex_lb.endpoint": f.endpoint,
        "codex_lb.outcome": f.outcome,
        "codex_lb.attempts": f.attempts,
        "codex_lb.transport": f.transport,
      };
      if (f.accountId) attributes["codex_lb.account.id"] = f.accountId;
      if (f.apiKeyId) attributes["codex_lb.api_key.id"] = f.apiKeyId;
      if (f.errorCode) attributes["error.type"] = f.errorCode;
      if (f.ttfbMs !== null) attributes["codex_lb.ttfb_ms"] = f.ttfbMs;
      if (f.inputTokens !== null) attributes["gen_ai.usage.input_tokens"] = f.inputTokens;
      if (f.cachedInputTokens !== null) attributes["gen_ai.usage.cached_input_tokens"] = f.cachedInputTokens;
      if (f.outputTokens !== null) attributes["gen_ai.usage.output_tokens"] = f.outputTokens;
      if (f.reasoningTokens !== null) attributes["gen_ai.usage.reasoning_tokens"] = f.reasoningTokens;
      const span = this.#tracer.startSpan(
        `${f.method} ${f.path}`,
        { kind: SpanKind.SERVER, startTime: f.startedAt, attributes },
        parent ?? context.active(),
      );
      if (f.ttfbMs !== null) span.addEvent("first_event", f.startedAt + f.ttfbMs);
      // A client error (4xx) is not the server's: only 5xx and failures inside a 200 stream are errors.
      if (f.httpStatus >= 500 || (f.outcome === "error" && f.httpStatus < 400))
        span.setStatus({ code: SpanStatusCode.ERROR, message: f.errorCode ?? String(f.httpStatus) });
      span.end(f.startedAt + f.durationMs);
    } catch (e) {
      this.#log.warn({ err: e instanceof Error ? e.message : String(e) }, "trace span not recorded");
    }
  }

  /** Exports every span recorded so far (for measurements; shutdown does it at the end). */
  async forceFlush(): Promise<void> {
    await this.#provider.forceFlush();
  }

  async shutdown(): Promise<void> {
    try {
      await this.#provider.shutdown();
    } catch (e) {
      this.#log.warn({ err: e instanceof Error ? e.message : String(e) }, "trace export at shutdown failed");
    }
  }
}
