/**
 * `GET /v1/usage`: the calling key's own usage and limits (always needs a key, whatever
 * `apiKeyAuthEnabled` says). OpenAI-style snake_case, OpenAI error envelope.
 *
 * @module
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../../core/deps.ts";
import { GatewayError } from "../../core/errors.ts";
import { requestInfo } from "../../core/request-info.ts";
import { keyProblem } from "./authorize.ts";
import { limitStates, usageBetween, windowBounds } from "./limits.ts";
import { getApiKey } from "./repository.ts";
import { UsageBody } from "./schemas.ts";

const sec = (ms: number) => Math.floor(ms / 1000);

export function usageRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:v1-usage" }).use(requestInfo).get(
    "/v1/usage",
    async ({ info }) => {
      const id = info.apiKeyId;
      const now = deps.clock();
      const key = id ? await getApiKey(deps.store.db, id) : null;
      if (!key || keyProblem(key, now)) throw new GatewayError("invalid_api_key");
      const month = windowBounds(key.createdAt, "monthly", now);
      const [u, states] = await Promise.all([
        usageBetween(deps.store.db, key.id, month.start, month.resetsAt),
        limitStates(deps.store.db, key, now),
      ]);
      return {
        object: "api_key.usage" as const,
        api_key_id: key.id,
        name: key.name,
        key_prefix: key.keyPrefix,
        expires_at: key.expiresAt === null ? null : sec(key.expiresAt),
        allowed_models: key.allowedModels ? [...key.allowedModels] : null,
        usage: {
          window_start: sec(month.start),
          request_count: u.requests,
          input_tokens: u.inputTokens,
          cached_input_tokens: u.cachedInputTokens,
          output_tokens: u.outputTokens,
          total_tokens: u.totalTokens,
          cost_usd: u.costUsd,
        },
        limits: states.map((s) => ({
          limit_type: s.limitType,
          limit_window: s.limitWindow,
          max_value: s.maxValue,
          current_value: s.currentValue,
          remaining_value: s.remainingValue,
          resets_at: Math.ceil(s.resetsAt / 1000),
        })),
      };
    },
    {
      detail: { tags: ["proxy"], summary: "The calling API key's usage and limits" },
      response: { 200: UsageBody },
    },
  );
}
