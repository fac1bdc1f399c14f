import { describe, expect, test } from "bun:test";
import type { AccountSnapshot } from "../../src/core/types.ts";
import { HookBus, hookNames, type RefreshFailedEvent } from "../../src/plugin-host/hooks.ts";
import { account as snapshot } from "../support/snapshot.ts";

const quiet = { warn: () => {}, error: () => {} };
const account: AccountSnapshot = snapshot("acc-1", { version: 0 });
const event = (errorCode: string | null): RefreshFailedEvent => ({
  account,
  trigger: "request",
  httpStatus: 401,
  errorCode,
  errorType: null,
  message: null,
  transport: false,
  now: 1,
});
const deactivate = (reason: string) => ({
  type: "account.deactivate" as const,
  accountId: "acc-1",
  status: "reauth_required" as const,
  reason,
});

describe("HookBus", () => {
  test("handlers run by order, then registration; actions are collected with their plugin", async () => {
    const bus = new HookBus(quiet);
    const seen: string[] = [];
    bus.on("b", "refresh.failed", () => {
      seen.push("b");
      return deactivate("from b");
    });
    bus.on(
      "a",
      "refresh.failed",
      (_e, call) => {
        seen.push("a");
        expect(call.previous).toEqual([]);
        return [deactivate("from a")];
      },
      { order: -1 },
    );
    bus.on("c", "refresh.failed", (_e, call) => {
      seen.push("c");
      expect(call.previous.length).toBe(2);
    });
    const out = await bus.run("refresh.failed", event("x"));
    expect(seen).toEqual(["a", "b", "c"]);
    expect(out.actions.map((a) => (a as { reason: string }).reason)).toEqual(["from a", "from b"]);
    expect(out.attribution).toEqual(["a", "b"]);
    expect(out.failed).toBe(false);
    expect(bus.handlersOf("refresh.failed")).toEqual(["a", "b", "c"]);
  });

  test("handlers that answer at once give the outcome at once; a promise in the chain is awaited in its place", async () => {
    const plain = new HookBus(quiet);
    plain.on("a", "refresh.failed", () => deactivate("a"));
    plain.on("b", "refresh.failed", () => undefined);
    const now = plain.run("refresh.failed", event("x"));
    expect(now).not.toBeInstanceOf(Promise);
    expect((now as Awaited<typeof now>).results.map((r) => r.status)).toEqual(["ok", "ok"]);

    const mixed = new HookBus(quiet);
    const seen: string[] = [];
    mixed.on("first", "refresh.failed", () => {
      seen.push("first");
      return deactivate("first");
    });
    mixed.on("slow", "refresh.failed", async (_e, call) => {
      seen.push("slow");
      expect(call.previous.length).toBe(1);
      await Promise.resolve();
      seen.push("slow done");
      return deactivate("slow");
    });
    mixed.on("throws", "refresh.failed", async () => {
      seen.push("throws");
      throw new Error("boom");
    });
    mixed.on("last", "refresh.failed", (_e, call) => {
      seen.push("last");
      expect(call.previous.length).toBe(2);
      return { actions: [deactivate("last")], stop: true };
    });
    mixed.on("never", "refresh.failed", () => {
      seen.push("never");
    });
    const pending = mixed.run("refresh.failed", event("x"));
    expect(pending).toBeInstanceOf(Promise);
    // Nothing after the waiting handler ran yet.
    expect(seen).toEqual(["first", "slow"]);
    const out = await pending;
    expect(seen).toEqual(["first", "slow", "slow done", "throws", "last"]);
    expect(out.actions.map((a) => (a as { reason: string }).reason)).toEqual(["first", "slow", "last"]);
    expect(out.attribution).toEqual(["first", "slow", "last"]);
    expect(out.results.map((r) => `${r.plugin}:${r.status}`)).toEqual([
      "first:ok",
      "slow:ok",
      "throws:error",
      "last:ok",
    ]);
    expect(out.failed).toBe(true);
  });

  test("stop ends the chain, so an early handler can override a later one", async () => {
    const bus = new HookBus(quiet);
    bus.on("builtin", "refresh.failed", () => deactivate("builtin"));
    bus.on("operator", "refresh.failed", () => ({ actions: [], stop: true }), { order: -10 });
    const out = await bus.run("refresh.failed", event("token_expired"));
    expect(out.actions).toEqual([]);
    expect(out.results.map((r) => r.plugin)).toEqual(["operator"]);
  });

  test("a request action is terminal", async () => {
    const bus = new HookBus(quiet);
    bus.on("fw", "request.admit", () => ({ type: "request.reject", code: "ip_not_allowed" }));
    bus.on("other", "request.admit", () => {
      throw new Error("must not run");
    });
    const out = await bus.run("request.admit", {
      requestId: "r",
      method: "GET",
      path: "/v1/models",
      headers: new Headers(),
      peerIp: "10.0.0.1",
      clientIp: "10.0.0.1",
      surface: "proxy",
      now: 0,
    });
    expect(out.actions).toEqual([{ type: "request.reject", code: "ip_not_allowed" }]);
    expect(out.failed).toBe(false);
  });

  test("invalid actions are dropped and reported; valid ones in the same list kept", async () => {
    const bus = new HookBus(quiet);
    bus.on("sloppy", "refresh.failed", () => [
      { type: "account.deactivate", accountId: "acc-1", status: "gone", reason: "x" } as never,
      { type: "account.explode" } as never,
      deactivate("ok"),
    ]);
    const out = await bus.run("refresh.failed", event(null));
    expect(out.actions).toEqual([deactivate("ok")]);
    expect(out.results).toEqual([{ plugin: "sloppy", status: "invalid", error: "invalid action dropped" }]);
  });

  test("a throwing handler is reported as failed and the others still run", async () => {
    const bus = new HookBus(quiet);
    bus.on("broken", "refresh.failed", async () => {
      throw new Error("boom");
    });
    bus.on("fine", "refresh.failed", () => deactivate("fine"));
    const out = await bus.run("refresh.failed", event(null));
    expect(out.failed).toBe(true);
    expect(out.results).toEqual([
      { plugin: "broken", status: "error", error: "boom" },
      { plugin: "fine", status: "ok" },
    ]);
    expect(out.actions.length).toBe(1);
  });

  test("a handler that throws at once is taken like one whose promise rejects: recorded, logged once, the chain goes on", async () => {
    const logged: object[] = [];
    const log = { warn: () => {}, error: (o: object) => logged.push(o) };
    const bus = new HookBus(log);
    bus.on("sync", "refresh.failed", () => {
      throw new Error("at once");
    });
    bus.on("fine", "refresh.failed", () => deactivate("fine"));
    // Only handlers that answer at once: the outcome too comes at once.
    const now = bus.run("refresh.failed", event(null));
    expect(now).not.toBeInstanceOf(Promise);
    const out = now as Awaited<typeof now>;
    expect(out.failed).toBe(true);
    expect(out.results).toEqual([
      { plugin: "sync", status: "error", error: "at once" },
      { plugin: "fine", status: "ok" },
    ]);
    expect(out.attribution).toEqual(["fine"]);

    // The same after a handler that waited, and next to one whose promise rejects.
    const mixed = new HookBus(log);
    mixed.on("waits", "refresh.failed", async () => undefined);
    mixed.on("sync", "refresh.failed", () => {
      throw new Error("at once");
    });
    mixed.on("rejects", "refresh.failed", () => Promise.reject(new Error("later")));
    mixed.on("fine", "refresh.failed", () => deactivate("fine"));
    const later = await mixed.run("refresh.failed", event(null));
    expect(later.failed).toBe(true);
    expect(later.results).toEqual([
      { plugin: "waits", status: "ok" },
      { plugin: "sync", status: "error", error: "at once" },
      { plugin: "rejects", status: "error", error: "later" },
      { plugin: "fine", status: "ok" },
    ]);
    expect(later.attribution).toEqual(["fine"]);
    expect(logged).toEqual([
      { hook: "refresh.failed", plugin: "sync", err: "at once" },
      { hook: "refresh.failed", plugin: "sync", err: "at once" },
      { hook: "refresh.failed", plugin: "rejects", err: "later" },
    ]);
  });

  test("unknown hook names and registration after seal are refused", () => {
    const bus = new HookBus(quiet);
    expect(() => bus.on("p", "refresh.fail" as never, () => undefined)).toThrow(
      /unknown hook "refresh.fail"/,
    );
    bus.seal();
    expect(() => bus.on("p", "refresh.failed", () => undefined)).toThrow(/only be registered during setup/);
  });

  test("every hook name is unique", () => {
    expect(new Set(hookNames).size).toBe(hookNames.length);
  });
});
