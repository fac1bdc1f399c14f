/**
 * Optional OpenTelemetry trace export: one span per proxied request (HTTP request, compaction or
 * WebSocket turn), sent over OTLP/HTTP to `CODEX_LB_OTEL_TRACES_ENDPOINT`. Off by default, and then
 * free: no OpenTelemetry module is loaded (the SDK is imported only when the setting is set) and
 * the request path pays one `null` check.
 *
 * @module
 */
import type { Logger } from "../core/logging.ts";
import { SettingsError } from "../settings/load.ts";
import type { Settings } from "../settings/schema.ts";

/** What a finished proxied request tells the tracer (the same facts as its access line). */
export interface SpanFacts {
  readonly requestId: string;
  /** `POST`, or `WS` for a WebSocket turn. */
  readonly method: string;
  /** The path: `/v1/responses`, `/backend-api/codex/responses/compact`, … */
  readonly path: string;
  /** The endpoint family: `responses`, `chat`, `codex`, `compact`. */
  readonly endpoint: string;
  readonly model: string;
  readonly accountId: string | null;
  readonly apiKeyId: string | null;
  readonly httpStatus: number;
  /** `success`, `error`, `cancelled`. */
  readonly outcome: string;
  readonly errorCode: string | null;
  readonly attempts: number;
  /** Epoch ms (the injected clock) when the request arrived. */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly ttfbMs: number | null;
  readonly inputTokens: number | null;
  readonly cachedInputTokens: number | null;
  readonly outputTokens: number | null;
  readonly reasoningTokens: number | null;
  readonly transport: string;
  /** The client's W3C `traceparent` / `tracestate` headers: the span joins the client's trace. */
  readonly traceparent: string | null;
  readonly tracestate: string | null;
}

export interface RequestTracer {
  /** Records the span of one finished request (batched; never throws, never waits). */
  requestDone(facts: SpanFacts): void;
  /** Exports what is batched and stops. */
  shutdown(): Promise<void>;
}

/** Parses `CODEX_LB_OTEL_HEADERS` (`name=value,name=value`); a malformed pair is a {@link SettingsError}. */
export function parseOtelHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    const name = eq > 0 ? part.slice(0, eq).trim() : "";
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name))
      throw new SettingsError(
        "CODEX_LB_OTEL_HEADERS",
        `expected name=value pairs separated by commas, got ${JSON.stringify(part)}`,
      );
    const raw = part.slice(eq + 1).trim();
    try {
      // An own property whatever the name (`out[name] =` with `__proto__` would set the prototype
      // and drop the header).
      Object.defineProperty(out, name, {
        value: decodeURIComponent(raw),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } catch {
      throw new SettingsError("CODEX_LB_OTEL_HEADERS", `the value of ${name} is not URL-encoded text`);
    }
  }
  return out;
}

/**
 * The tracer of a gateway, or null when trace export is off (`CODEX_LB_OTEL_TRACES_ENDPOINT`
 * empty): then nothing of OpenTelemetry is loaded.
 */
export async function createTracer(
  settings: Pick<Settings, "otelTracesEndpoint" | "otelHeaders" | "otelSampleRatio">,
  version: string,
  log: Logger,
): Promise<RequestTracer | null> {
  if (!settings.otelTracesEndpoint) return null;
  const { OtelTracer } = await import("./otel.ts");
  return new OtelTracer({
    url: settings.otelTracesEndpoint,
    headers: parseOtelHeaders(settings.otelHeaders),
    sampleRatio: settings.otelSampleRatio,
    version,
    log,
  });
}
