/**
 * Actions: the plain data that hook handlers return, and the only way a plugin changes anything.
 * - Account actions (`account.*`) move an account through the state table; the action applier
 *   (`apply.ts`) applies them in one transaction with compare-and-set on the account's version.
 * - Data actions (`sticky.*`, `tokens.save`, `usage.record`) change core data, each with its own
 *   compare-and-set guard (`expectedAccountId`, `replacing`); `tokens.save` is accepted only from
 *   the plugin that provides `credentials`.
 * - Request actions (`request.reject`, `route.account`, `request.failover`) steer the request being
 *   served and never touch the store.
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
/**
 * Moves the current request to another account (`upstream.failed`): without it a failure is shown
 * to the client as it is. Not terminal: later handlers still see the failure.
 */
export const RequestFailover = Type.Object(
  { type: Type.Literal("request.failover"), reason: Type.Optional(Reason) },
  { additionalProperties: false },
);

const StickyKey = Type.String({ minLength: 1, maxLength: 512 });
const StickyKindSchema = Type.Union([
  Type.Literal("turn_state"),
  Type.Literal("session"),
  Type.Literal("thread"),
  Type.Literal("prompt_cache"),
]);
/**
 * Binds (or moves) a sticky key to an account for the configured TTL. With `expectedAccountId`
 * (null: "no live binding") it applies only if the key is still bound as the decision saw it.
 */
export const StickyBind = Type.Object(
  {
    type: Type.Literal("sticky.bind"),
    key: StickyKey,
    kind: StickyKindSchema,
    accountId: AccountId,
    expectedAccountId: Type.Optional(Type.Union([AccountId, Type.Null()])),
  },
  { additionalProperties: false },
);
/** Slides the expiry of a binding just used, if the key is still bound to `accountId`. */
export const StickyTouch = Type.Object(
  { type: Type.Literal("sticky.touch"), key: StickyKey, accountId: AccountId },
  { additionalProperties: false },
);
/** Removes a binding (only if still bound to `expectedAccountId`, when given). */
export const StickyForget = Type.Object(
  { type: Type.Literal("sticky.forget"), key: StickyKey, expectedAccountId: Type.Optional(AccountId) },
  { additionalProperties: false },
);
const Token = Type.String({ minLength: 1, maxLength: 20_000 });
/**
 * Stores refreshed tokens (encrypted) and the claims of the new id_token. With `replacing` (the
 * refresh token they were obtained with) nothing is written when the stored refresh token changed
 * meanwhile (a new login won): the result is then `stale`. Only the credentials provider may.
 */
export const TokensSave = Type.Object(
  {
    type: Type.Literal("tokens.save"),
    accountId: AccountId,
    accessToken: Token,
    refreshToken: Token,
    idToken: Token,
    replacing: Type.Optional(Token),
  },
  { additionalProperties: false },
);
const UsageWindowSchema = Type.Object(
  {
    usedPercent: Type.Number({ minimum: 0, maximum: 1000 }),
    windowMinutes: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    resetAt: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  },
  { additionalProperties: false },
);
/** Stores one `/wham/usage` reading as usage snapshots (the windows `GET /api/accounts` shows). */
export const UsageRecordAction = Type.Object(
  {
    type: Type.Literal("usage.record"),
    accountId: AccountId,
    primary: Type.Union([UsageWindowSchema, Type.Null()]),
    secondary: Type.Union([UsageWindowSchema, Type.Null()]),
    credits: Type.Union([
      Type.Object(
        {
          hasCredits: Type.Boolean(),
          unlimited: Type.Boolean(),
          balance: Type.Union([Type.Number(), Type.Null()]),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
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
export const RequestActionSchema = Type.Union([RequestReject, RouteAccount, RequestFailover]);
export const DataActionSchema = Type.Union([
  StickyBind,
  StickyTouch,
  StickyForget,
  TokensSave,
  UsageRecordAction,
]);
export const ActionSchema = Type.Union([AccountActionSchema, RequestActionSchema, DataActionSchema]);

export type AccountAction = Static<typeof AccountActionSchema>;
export type RequestAction = Static<typeof RequestActionSchema>;
export type DataAction = Static<typeof DataActionSchema>;
export type Action = Static<typeof ActionSchema>;
export type ActionType = Action["type"];

/** `request.reject` and `route.account` end a hook chain: the first one wins (fastify's `reply.sent`). */
export function isTerminal(
  a: Action,
): a is Extract<RequestAction, { type: "request.reject" | "route.account" }> {
  return a.type === "request.reject" || a.type === "route.account";
}

export function isAccountAction(a: Action): a is AccountAction {
  return a.type.startsWith("account.");
}

export function isDataAction(a: Action): a is DataAction {
  return a.type.startsWith("sticky.") || a.type === "tokens.save" || a.type === "usage.record";
}

/** Actions that change the store (account state or core data); the rest steer the request. */
export function changesStore(a: Action): a is AccountAction | DataAction {
  return isAccountAction(a) || isDataAction(a);
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
