/**
 * Actions: the plain data that hook handlers return. Account actions are applied to the store by
 * the action applier (`apply.ts`) in one transaction; request actions (`request.reject`,
 * `route.account`) steer the request being served and never touch the store.
 *
 * Every action is validated against {@link ActionSchema} before anything is applied, so a plugin
 * loaded from disk cannot write garbage.
 *
 * @module
 */
import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

const AccountId = Type.String({ minLength: 1, maxLength: 200 });
const Reason = Type.String({ maxLength: 500 });
const Epoch = Type.Integer({ minimum: 0, description: "epoch milliseconds" });
/** Optional compare-and-set guard: apply only if the account's version still equals this. */
const ExpectedVersion = Type.Optional(Type.Integer({ minimum: 0 }));

export const AccountDeactivate = Type.Object(
  {
    type: Type.Literal("account.deactivate"),
    accountId: AccountId,
    status: Type.Union([Type.Literal("reauth_required"), Type.Literal("deactivated")]),
    reason: Reason,
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
export const AccountRateLimit = Type.Object(
  {
    type: Type.Literal("account.rate_limit"),
    accountId: AccountId,
    resetAt: Epoch,
    reason: Reason,
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
export const AccountQuotaExceeded = Type.Object(
  {
    type: Type.Literal("account.quota_exceeded"),
    accountId: AccountId,
    resetAt: Epoch,
    reason: Type.Optional(Reason),
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
export const AccountCooldown = Type.Object(
  {
    type: Type.Literal("account.cooldown"),
    accountId: AccountId,
    until: Epoch,
    reason: Type.Optional(Reason),
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
export const AccountReactivate = Type.Object(
  {
    type: Type.Literal("account.reactivate"),
    accountId: AccountId,
    reason: Type.Optional(Reason),
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
export const AccountPause = Type.Object(
  {
    type: Type.Literal("account.pause"),
    accountId: AccountId,
    reason: Type.Optional(Reason),
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
/** Sets how the balancer treats the account (`normal`, `burn_first`, `preserve`); no status change. */
export const AccountRoutingPolicy = Type.Object(
  {
    type: Type.Literal("account.routing_policy"),
    accountId: AccountId,
    routingPolicy: Type.Union([Type.Literal("normal"), Type.Literal("burn_first"), Type.Literal("preserve")]),
    expectedVersion: ExpectedVersion,
  },
  { additionalProperties: false },
);
/** Clears a transient backoff after a success (no status change). */
export const AccountHealthy = Type.Object(
  { type: Type.Literal("account.healthy"), accountId: AccountId, expectedVersion: ExpectedVersion },
  { additionalProperties: false },
);

/**
 * Refuses the request. With a `code` from the error catalogue (`src/core/errors.ts`) the status,
 * type and default message come from there; a plugin's own code must bring its `status`.
 */
export const RequestReject = Type.Object(
  {
    type: Type.Literal("request.reject"),
    code: Type.String({ minLength: 1 }),
    status: Type.Optional(Type.Integer({ minimum: 400, maximum: 599 })),
    message: Type.Optional(Type.String()),
    errorType: Type.Optional(Type.String()),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    extra: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Null()]))),
  },
  { additionalProperties: false },
);
export const RouteAccount = Type.Object(
  { type: Type.Literal("route.account"), accountId: AccountId, reason: Type.Optional(Reason) },
  { additionalProperties: false },
);

export const AccountActionSchema = Type.Union([
  AccountDeactivate,
  AccountRateLimit,
  AccountQuotaExceeded,
  AccountCooldown,
  AccountReactivate,
  AccountPause,
  AccountRoutingPolicy,
  AccountHealthy,
]);
export const RequestActionSchema = Type.Union([RequestReject, RouteAccount]);
export const ActionSchema = Type.Union([AccountActionSchema, RequestActionSchema]);

export type AccountAction = Static<typeof AccountActionSchema>;
export type RequestAction = Static<typeof RequestActionSchema>;
export type Action = Static<typeof ActionSchema>;
export type ActionType = Action["type"];

/** Request actions end a hook chain: the first one returned wins (fastify's `reply.sent`). */
export function isTerminal(a: Action): a is RequestAction {
  return a.type === "request.reject" || a.type === "route.account";
}

export function isAccountAction(a: Action): a is AccountAction {
  return a.type.startsWith("account.");
}

// Compiled once: every action of every hook is checked, on the proxy's hot path too.
const actionCheck = TypeCompiler.Compile(ActionSchema);

/** Checks one action; returns a short description of what is wrong, or null. */
export function validateAction(candidate: unknown): string | null {
  if (actionCheck.Check(candidate)) return null;
  const type = (candidate as { type?: unknown } | null)?.type;
  const first = actionCheck.Errors(candidate).First();
  return `invalid action ${typeof type === "string" ? JSON.stringify(type) : "(no type)"}${first ? `: ${first.path || "/"} ${first.message}` : ""}`;
}
