/**
 * `GET /health` (liveness: the process answers) and `GET /health/ready` (readiness: the store
 * answers and at least one account may serve a request now). Readiness never lies: a gateway with
 * no usable account is not ready, and the answer says why and how many accounts are in each status.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { isUsable } from "../core/health.ts";
import { type AccountStatus, accountStatuses } from "../core/types.ts";

const Counts = t.Object(
  {
    total: t.Integer({ minimum: 0 }),
    usable: t.Integer({ minimum: 0, description: "accounts that may serve a request now" }),
    byStatus: t.Record(t.String(), t.Integer({ minimum: 0 }), {
      description: "number of accounts in each status (every status listed, zeros included)",
    }),
  },
  { description: "account counts at the time of the check; null when the store did not answer" },
);

export const ReadyBody = t.Object({
  status: t.Union([t.Literal("ready"), t.Literal("unavailable")]),
  reason: t.Optional(
    t.Union([t.Literal("store_unreachable"), t.Literal("no_usable_account")], {
      description: "why the gateway is not ready (absent when ready)",
    }),
  ),
  accounts: t.Union([Counts, t.Null()]),
});

export interface Readiness {
  readonly status: "ready" | "unavailable";
  readonly reason?: "store_unreachable" | "no_usable_account";
  readonly accounts: { total: number; usable: number; byStatus: Record<string, number> } | null;
}

/** The readiness verdict; the same function feeds `/health/ready`, `codex-lb doctor` and metrics. */
export async function readiness(deps: Pick<AppDeps, "store" | "services" | "clock">): Promise<Readiness> {
  if (!(await deps.store.ping()))
    return { status: "unavailable", reason: "store_unreachable", accounts: null };
  let all: Awaited<ReturnType<AppDeps["services"]["accounts"]["list"]>>;
  try {
    all = await deps.services.accounts.list();
  } catch {
    return { status: "unavailable", reason: "store_unreachable", accounts: null };
  }
  const now = deps.clock();
  const byStatus = Object.fromEntries(accountStatuses.map((s) => [s, 0])) as Record<AccountStatus, number>;
  let usable = 0;
  for (const a of all) {
    byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    if (isUsable(a, now)) usable++;
  }
  const accounts = { total: all.length, usable, byStatus };
  return usable > 0
    ? { status: "ready", accounts }
    : { status: "unavailable", reason: "no_usable_account", accounts };
}

export function healthRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:health" })
    .get("/health", () => ({ status: "ok" as const }), {
      detail: {
        tags: ["health"],
        summary: "Liveness: the process answers",
        description: "Always 200 while the process runs; says nothing about the store or the accounts.",
        security: [],
      },
      response: { 200: t.Object({ status: t.Literal("ok") }, { examples: [{ status: "ok" }] }) },
    })
    .get(
      "/health/ready",
      async ({ set }) => {
        const r = await readiness(deps);
        if (r.status !== "ready") set.status = 503;
        return r;
      },
      {
        detail: {
          tags: ["health"],
          summary: "Readiness: the store answers and an account is usable",
          description:
            "200 when the store answers a trivial query and at least one account may serve a request now " +
            "(active, or rate-limited / over quota past its reset, and not backing off). Otherwise 503 " +
            "with `reason` (`store_unreachable` or `no_usable_account`) and the account counts by status.",
          security: [],
        },
        response: { 200: ReadyBody, 503: ReadyBody },
      },
    );
}
