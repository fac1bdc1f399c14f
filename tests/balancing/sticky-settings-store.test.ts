import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayError } from "../../src/core/errors.ts";
import { RequestLogWriter } from "../../src/request-logs/writer.ts";
import { RuntimeSettingsStore } from "../../src/runtime-settings/store.ts";
import { StickyStore } from "../../src/sticky/store.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";
import { insertAccount, T0 } from "./fixtures.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-sticky-"));
  store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
  await insertAccount(store.db, "a");
  await insertAccount(store.db, "b");
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const TTL = 1_800_000;

describe("sticky store", () => {
  test("bind, get, move: a moved key starts a new binding", async () => {
    const s = new StickyStore(store.db);
    await s.bind("k", "session", "a", T0, TTL);
    expect(await s.get("k", T0 + 1)).toEqual({
      key: "k",
      kind: "session",
      accountId: "a",
      createdAt: T0,
      updatedAt: T0,
      expiresAt: T0 + TTL,
    });
    await s.bind("k", "session", "a", T0 + 5, TTL);
    expect((await s.get("k", T0 + 6))?.createdAt).toBe(T0);
    await s.bind("k", "session", "b", T0 + 10, TTL);
    expect(await s.get("k", T0 + 11)).toMatchObject({ accountId: "b", createdAt: T0 + 10 });
  });

  test("a binding expires TTL after its last use; use refreshes it", async () => {
    const s = new StickyStore(store.db);
    await s.bind("k", "prompt_cache", "a", T0, TTL);
    expect(await s.get("k", T0 + TTL)).toBeNull();
    await s.bind("k", "prompt_cache", "a", T0, TTL);
    // Within the minimum interval a touch writes nothing; after it, the expiry slides.
    expect(await s.touch("k", T0 + 1000, TTL)).toBe(false);
    expect(await s.touch("k", T0 + 20_000, TTL)).toBe(true);
    expect(await s.get("k", T0 + TTL + 1)).toMatchObject({ expiresAt: T0 + 20_000 + TTL });
  });

  test("list shows live bindings newest first; expire and delete remove rows", async () => {
    const s = new StickyStore(store.db);
    await s.bind("old", "thread", "a", T0 - TTL, TTL);
    await s.bind("k1", "session", "a", T0, TTL);
    await s.bind("k2", "turn_state", "b", T0 + 1, TTL);
    expect((await s.list(T0 + 2)).map((b) => b.key)).toEqual(["k2", "k1"]);
    expect((await s.list(T0 + 2, { accountId: "a" })).map((b) => b.key)).toEqual(["k1"]);
    expect(await s.expire(T0 + 2)).toBe(1);
    expect(await s.delete("k1")).toBe(true);
    expect(await s.delete("k1")).toBe(false);
    expect((await s.list(T0 + 2)).map((b) => b.key)).toEqual(["k2"]);
  });

  test("bindings of a deleted account go with it", async () => {
    const s = new StickyStore(store.db);
    await s.bind("k", "session", "a", T0, TTL);
    await store.db.deleteFrom("accounts").where("id", "=", "a").execute();
    expect(await s.get("k", T0)).toBeNull();
  });

  test("the owner of a response is the account of its newest request log, queued rows included", async () => {
    const quiet = { error: () => {} };
    const s = new RequestLogWriter(store.db, quiet, 60_000);
    const log = (id: number, account: string | null, responseId: string | null) =>
      store.db
        .insertInto("request_logs")
        .values({
          requested_at: T0 + id,
          request_id: `req-${id}`,
          account_id: account,
          endpoint: "/v1/responses",
          status: "success",
          response_id: responseId,
        } as never)
        .execute();
    await log(1, "a", "resp_1");
    await log(2, "b", "resp_2");
    await log(3, null, "resp_2");
    expect(await s.responseOwner("resp_1")).toBe("a");
    expect(await s.responseOwner("resp_2")).toBe("b");
    expect(await s.responseOwner("resp_missing")).toBeNull();
    // A row still queued (not yet written) already answers: a client may continue at once.
    s.add({
      requested_at: T0 + 9,
      request_id: "req-9",
      account_id: "b",
      endpoint: "/v1/responses",
      status: "success",
      response_id: "resp_9",
    });
    expect(s.pending).toBe(1);
    expect(await s.responseOwner("resp_9")).toBe("b");
    await s.stop();
    expect(s.pending).toBe(0);
    expect(await s.responseOwner("resp_9")).toBe("b");
  });
});

describe("runtime settings store", () => {
  const defaults = {
    routingStrategy: "capacity_weighted" as const,
    stickyTtlSeconds: 1800,
    apiKeyAuthEnabled: false,
  };

  test("a read under way when the settings change or are forgotten does not put what it read in the cache", async () => {
    const rs = new RuntimeSettingsStore(store.db, defaults, () => T0, 60_000);
    const reading = rs.get();
    const written = await rs.update({ stickyTtlSeconds: 60 });
    expect((await reading).version).toBeLessThanOrEqual(written.version);
    expect(rs.cached()).toBe(written);
    // Forgotten (another replica changed it) while a read is under way: the cache stays empty.
    rs.forget();
    const again = rs.get();
    rs.forget();
    await again;
    expect(rs.cached()).toBeNull();
    expect(await rs.get()).toEqual(written);
  });

  test("defaults until changed; version counts changes; null restores the default", async () => {
    const rs = new RuntimeSettingsStore(store.db, defaults, () => T0, 0);
    expect(await rs.get()).toEqual({ ...defaults, version: 0 });
    expect(await rs.update({ routingStrategy: "round_robin" }, 0)).toEqual({
      routingStrategy: "round_robin",
      stickyTtlSeconds: 1800,
      apiKeyAuthEnabled: false,
      version: 1,
    });
    expect(await rs.update({ stickyTtlSeconds: 60 })).toMatchObject({
      routingStrategy: "round_robin",
      version: 2,
    });
    expect(await rs.update({ routingStrategy: null }, 2)).toEqual({
      routingStrategy: "capacity_weighted",
      stickyTtlSeconds: 60,
      apiKeyAuthEnabled: false,
      version: 3,
    });
    // Another instance over the same store (another process) reads the same document.
    expect(await new RuntimeSettingsStore(store.db, defaults).get()).toEqual({
      routingStrategy: "capacity_weighted",
      stickyTtlSeconds: 60,
      apiKeyAuthEnabled: false,
      version: 3,
    });
  });

  test("a stale expectedVersion is a settings_conflict and changes nothing", async () => {
    const rs = new RuntimeSettingsStore(store.db, defaults, () => T0, 0);
    await rs.update({ routingStrategy: "fill_first" }, 0);
    const err = await rs.update({ routingStrategy: "usage_weighted" }, 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect([(err as GatewayError).code, (err as GatewayError).status]).toEqual(["settings_conflict", 409]);
    expect((await rs.get()).routingStrategy).toBe("fill_first");
  });

  test("a stored value this build does not accept falls back to the default", async () => {
    await store.db
      .insertInto("settings")
      .values({
        key: "runtime",
        value: '{"routingStrategy":"sequential_drain","stickyTtlSeconds":99}',
        version: 4,
        updated_at: T0,
      })
      .execute();
    const rs = new RuntimeSettingsStore(store.db, defaults);
    expect(await rs.get()).toEqual({
      routingStrategy: "capacity_weighted",
      stickyTtlSeconds: 99,
      apiKeyAuthEnabled: false,
      version: 4,
    });
  });
});
