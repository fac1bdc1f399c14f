/**
 * `/api/firewall`: the allowlist of client addresses and CIDR ranges for the proxy routes.
 * Every change is audited.
 *
 * @module
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { requestInfo } from "../core/request-info.ts";
import { ErrorBody } from "../core/schemas.ts";
import { auditContext } from "../store/audit.ts";

const Entry = t.Object({
  entry: t.String({ description: "Normalised address (`10.1.2.3`, `2001:db8::1`) or range (`10.0.0.0/8`)" }),
  createdAt: t.Integer({ description: "epoch ms" }),
});
const Listing = t.Object({
  mode: t.Union([t.Literal("allow_all"), t.Literal("allowlist")], {
    description: "`allow_all` while the list is empty",
  }),
  entries: t.Array(Entry),
});

export function firewallRoutes(deps: AppDeps) {
  const fw = deps.access.firewall;
  const listing = async () => {
    const entries = await fw.list();
    return { mode: entries.length === 0 ? ("allow_all" as const) : ("allowlist" as const), entries };
  };
  return new Elysia({ name: "routes:firewall" })
    .use(requestInfo)
    .get("/api/firewall", listing, {
      detail: { tags: ["firewall"], summary: "The proxy allowlist (empty = every client allowed)" },
      response: { 200: Listing },
    })
    .put(
      "/api/firewall",
      async ({ body, info }) => {
        // Each change writes its audit row in its own transaction.
        await fw.replace(body.entries, deps.clock(), (entries) => ({
          action: "firewall.replaced",
          ...auditContext(info),
          details: { entries },
        }));
        return listing();
      },
      {
        body: t.Object({ entries: t.Array(t.String(), { maxItems: 10_000 }) }),
        detail: { tags: ["firewall"], summary: "Replace the whole allowlist" },
        response: { 200: Listing, 400: ErrorBody },
      },
    )
    .post(
      "/api/firewall/entries",
      async ({ body, set, info }) => {
        const added = await fw.add(body.entry, deps.clock(), (a) => ({
          action: "firewall.entry_added",
          ...auditContext(info),
          details: { entry: a.entry },
        }));
        set.status = 201;
        return added;
      },
      {
        body: t.Object({ entry: t.String({ minLength: 1, maxLength: 100 }) }),
        detail: { tags: ["firewall"], summary: "Allow an address or CIDR range" },
        response: { 201: Entry, 400: ErrorBody, 409: ErrorBody },
      },
    )
    .delete(
      "/api/firewall/entries",
      async ({ query, info }) => {
        const removed = await fw.remove(query.entry, {
          action: "firewall.entry_removed",
          ...auditContext(info),
          details: { entry: query.entry },
        });
        if (!removed) throw new GatewayError("not_found", `${query.entry} is not on the allowlist`);
        return { status: "deleted" as const };
      },
      {
        query: t.Object({ entry: t.String({ minLength: 1, maxLength: 100 }) }),
        detail: { tags: ["firewall"], summary: "Remove an address or range (`?entry=10.0.0.0/8`)" },
        response: { 200: t.Object({ status: t.Literal("deleted") }), 404: ErrorBody },
      },
    );
}
