import { afterAll, beforeAll, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import type { RefreshFailedEvent } from "../../src/plugin-host/hooks.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const examplePath = fileURLToPath(
  new URL("../../plugins/examples/custom-refresh-codes/index.ts", import.meta.url),
);
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ env: { CODEX_LB_PLUGINS: examplePath } });
});
afterAll(async () => {
  await gw.stop();
});

async function seedAccount(id: string) {
  await gw.running.store.db
    .insertInto("accounts")
    .values({
      id,
      email: `${id}@example.com`,
      codex_installation_id: crypto.randomUUID(),
      created_at: 1,
      updated_at: 1,
    })
    .execute();
}

function refreshFailed(account: RefreshFailedEvent["account"], errorCode: string): RefreshFailedEvent {
  return {
    account,
    trigger: "request",
    httpStatus: 401,
    errorCode,
    errorType: null,
    message: "banned",
    transport: false,
    now: Date.now(),
  };
}

test("a plugin loaded from CODEX_LB_PLUGINS is registered and listed with its source", async () => {
  const res = await fetch(`${gw.url}/api/plugins`);
  const body = (await res.json()) as {
    plugins: { name: string; source: string }[];
    hooks: Record<string, string[]>;
  };
  expect(body.plugins.at(-1)).toEqual({
    name: "examples.custom-refresh-codes",
    version: "1.0.0",
    source: examplePath,
  } as never);
  expect(body.hooks["refresh.failed"]?.[0]).toBe("examples.custom-refresh-codes");
  const own = await fetch(`${gw.url}/api/examples/custom-refresh-codes`);
  expect(await own.json()).toEqual({ codes: ["acme_account_banned"] });
});

test("its refresh.failed handler's account.deactivate is applied: status, event row, log line", async () => {
  await seedAccount("acc-file-1");
  const { services } = gw.running.gateway;
  const snapshot = (await services.accounts.get("acc-file-1"))!;
  const outcome = await services.fire("refresh.failed", refreshFailed(snapshot, "acme_account_banned"));
  expect(outcome.applied.map((r) => r.status)).toEqual(["applied"]);
  const after = (await services.accounts.get("acc-file-1"))!;
  expect(after.status).toBe("deactivated");
  expect(after.statusReason).toBe("Refresh failed with acme_account_banned (custom rule)");
  expect(after.version).toBe(snapshot.version + 1);
  const events = await gw.running.store.db
    .selectFrom("account_events")
    .selectAll()
    .where("account_id", "=", "acc-file-1")
    .execute();
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({
    action: "account.deactivate",
    from_status: "active",
    to_status: "deactivated",
    source: "refresh.failed",
    plugin: "examples.custom-refresh-codes",
  });
  expect(gw.logs().some((l) => l.msg === "account action applied" && l.accountId === "acc-file-1")).toBe(
    true,
  );
});

test("a stale compare-and-set (the account changed meanwhile) applies nothing", async () => {
  await seedAccount("acc-file-2");
  const { services } = gw.running.gateway;
  const snapshot = (await services.accounts.get("acc-file-2"))!;
  // Someone else changes the account after the event's snapshot was taken.
  await services.apply([{ type: "account.pause", accountId: "acc-file-2" }], { source: "admin" });
  const outcome = await services.fire("refresh.failed", refreshFailed(snapshot, "acme_account_banned"));
  expect(outcome.actions).toHaveLength(1);
  expect(outcome.applied.map((r) => r.status)).toEqual(["stale"]);
  const after = (await services.accounts.get("acc-file-2"))!;
  expect(after.status).toBe("paused");
  const events = await gw.running.store.db
    .selectFrom("account_events")
    .select("action")
    .where("account_id", "=", "acc-file-2")
    .execute();
  expect(events.map((e) => e.action)).toEqual(["account.pause"]);
});

test("codes the plugin does not know produce no action from it", async () => {
  await seedAccount("acc-file-3");
  const { services } = gw.running.gateway;
  const snapshot = (await services.accounts.get("acc-file-3"))!;
  const outcome = await services.fire("refresh.failed", refreshFailed(snapshot, "something_else"));
  expect(
    outcome.actions.filter(
      (a) =>
        (a as { accountId?: string }).accountId === "acc-file-3" &&
        a.type === "account.deactivate" &&
        a.reason.includes("custom rule"),
    ),
  ).toEqual([]);
});
