/**
 * TypeBox schemas of the API-key admin routes and of `GET /v1/usage` (camelCase on the admin
 * surface, snake_case on the OpenAI-style `/v1/usage`).
 *
 * @module
 */
import { t } from "elysia";
import type { LimitType, LimitWindow } from "./limits.ts";

export { ErrorBody as AdminError } from "../../core/schemas.ts";

export const LimitTypeSchema = t.Union(
  [
    t.Literal("total_tokens" satisfies LimitType),
    t.Literal("input_tokens" satisfies LimitType),
    t.Literal("output_tokens" satisfies LimitType),
    t.Literal("cost_usd" satisfies LimitType),
  ],
  { description: "What is counted: tokens (input includes cached; total = input + output) or cost in USD" },
);
export const LimitWindowSchema = t.Union(
  [
    t.Literal("5h" satisfies LimitWindow),
    t.Literal("daily" satisfies LimitWindow),
    t.Literal("weekly" satisfies LimitWindow),
    t.Literal("monthly" satisfies LimitWindow),
  ],
  { description: "5h, daily (24 h), weekly (7 d) or monthly (30 d), anchored at the key's creation" },
);

export const LimitInput = t.Object({
  limitType: LimitTypeSchema,
  limitWindow: LimitWindowSchema,
  maxValue: t.Number({ exclusiveMinimum: 0 }),
});

const Models = t.Union([t.Array(t.String({ minLength: 1, maxLength: 200 }), { maxItems: 500 }), t.Null()], {
  description: "Model ids this key may use; null or empty = every model",
});
const Expiry = t.Union([t.Integer({ minimum: 0 }), t.Null()], { description: "epoch ms; null = never" });

export const CreateBody = t.Object({
  name: t.String({ minLength: 1, maxLength: 128 }),
  isActive: t.Optional(t.Boolean()),
  expiresAt: t.Optional(Expiry),
  allowedModels: t.Optional(Models),
  limits: t.Optional(t.Array(LimitInput, { maxItems: 16 })),
});

export const UpdateBody = t.Object({
  name: t.Optional(t.String({ minLength: 1, maxLength: 128 })),
  isActive: t.Optional(t.Boolean({ description: "false revokes the key (401 on use) until set back" })),
  expiresAt: t.Optional(Expiry),
  allowedModels: t.Optional(Models),
  limits: t.Optional(t.Array(LimitInput, { maxItems: 16, description: "Replaces every limit of the key" })),
});

export const LimitView = t.Object({
  limitType: LimitTypeSchema,
  limitWindow: LimitWindowSchema,
  maxValue: t.Number(),
  currentValue: t.Number(),
  remainingValue: t.Number(),
  resetsAt: t.Integer({ description: "epoch ms when the current window ends" }),
});

export const ApiKeyView = t.Object({
  id: t.String(),
  name: t.String(),
  keyPrefix: t.String({ description: "First 15 characters of the key" }),
  isActive: t.Boolean(),
  expiresAt: t.Union([t.Integer(), t.Null()]),
  allowedModels: t.Union([t.Array(t.String()), t.Null()]),
  createdAt: t.Integer(),
  updatedAt: t.Integer(),
  lastUsedAt: t.Union([t.Integer(), t.Null()]),
  limits: t.Array(LimitView),
});

export const ApiKeyWithSecret = t.Composite([
  ApiKeyView,
  t.Object({ key: t.String({ description: "The plain key; shown only in this answer" }) }),
]);

export const UsageLimit = t.Object({
  limit_type: LimitTypeSchema,
  limit_window: LimitWindowSchema,
  max_value: t.Number(),
  current_value: t.Number(),
  remaining_value: t.Number(),
  resets_at: t.Integer({ description: "epoch seconds" }),
});

export const UsageBody = t.Object({
  object: t.Literal("api_key.usage"),
  api_key_id: t.String(),
  name: t.String(),
  key_prefix: t.String(),
  expires_at: t.Union([t.Integer(), t.Null()], { description: "epoch seconds" }),
  allowed_models: t.Union([t.Array(t.String()), t.Null()]),
  usage: t.Object(
    {
      window_start: t.Integer({ description: "epoch seconds: start of the current 30-day window" }),
      request_count: t.Integer(),
      input_tokens: t.Number(),
      cached_input_tokens: t.Number(),
      output_tokens: t.Number(),
      total_tokens: t.Number(),
      cost_usd: t.Number(),
    },
    { description: "This key's usage in its current monthly window" },
  ),
  limits: t.Array(UsageLimit),
});
