/**
 * The one pricing table: USD per million input, cached-input and output tokens, per model. Request
 * logs without a stored `cost_usd` are priced with it, and so are cost limits of API keys.
 *
 * @module
 */

export interface ModelPrice {
  /** USD per 1M uncached input tokens. */
  readonly input: number;
  /** USD per 1M cached input tokens. */
  readonly cachedInput: number;
  /** USD per 1M output tokens (reasoning tokens are part of output). */
  readonly output: number;
}

const p = (input: number, cachedInput: number, output: number): ModelPrice => ({
  input,
  cachedInput,
  output,
});

/** Keyed by lowercase model id; a dated or suffixed id uses its longest listed prefix. */
export const pricingTable: Readonly<Record<string, ModelPrice>> = {
  "gpt-5": p(1.25, 0.125, 10),
  "gpt-5-mini": p(0.25, 0.025, 2),
  "gpt-5-nano": p(0.05, 0.005, 0.4),
  "gpt-5-codex": p(1.25, 0.125, 10),
  "gpt-5.1": p(1.25, 0.125, 10),
  "gpt-5.1-codex": p(1.25, 0.125, 10),
  "gpt-5.1-codex-mini": p(0.25, 0.025, 2),
  "gpt-5.1-codex-max": p(1.25, 0.125, 10),
  "gpt-5.2": p(1.75, 0.175, 14),
  "gpt-5.2-codex": p(1.75, 0.175, 14),
  "gpt-5.3-codex": p(1.75, 0.175, 14),
  "gpt-5.4": p(2.5, 0.25, 15),
  "gpt-5.4-mini": p(0.75, 0.075, 4.5),
  "gpt-5.5": p(5, 0.5, 30),
};

/**
 * {@link pricingTable} as a map: a model id is the client's text, so it must find listed ids only,
 * never what every object inherits (`constructor`, `__proto__`); and a lookup by a string made at
 * run time (lower-cased) stays on the JIT's fast path, where a property lookup by it left the
 * optimised code.
 */
const prices: ReadonlyMap<string, ModelPrice> = new Map(Object.entries(pricingTable));

/** The price of a model: exact id, else the longest listed id followed by `-` (`gpt-5.4-mini-high`). */
export function priceOf(model: string | null | undefined): ModelPrice | null {
  if (!model) return null;
  const m = model.toLowerCase();
  const exact = prices.get(m);
  if (exact) return exact;
  let best: ModelPrice | null = null;
  let bestLength = 0;
  for (const [k, price] of prices) {
    if (k.length > bestLength && m.startsWith(`${k}-`)) {
      best = price;
      bestLength = k.length;
    }
  }
  return best;
}

export interface TokenCounts {
  /** All input tokens, cached ones included (as the Responses API reports them). */
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly outputTokens: number;
}

/** Cost in USD, or null for a model without a price. Cached tokens are clamped to [0, input]. */
export function costUsd(model: string | null | undefined, t: TokenCounts): number | null {
  const price = priceOf(model);
  if (!price) return null;
  const cached = Math.min(Math.max(t.cachedInputTokens, 0), Math.max(t.inputTokens, 0));
  const billable = Math.max(t.inputTokens, 0) - cached;
  return (
    (billable * price.input + cached * price.cachedInput + Math.max(t.outputTokens, 0) * price.output) / 1e6
  );
}
