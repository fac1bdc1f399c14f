/**
 * The cached sticky reader (`StickyReader.cached`, src/sticky/cache.ts) and the service around it,
 * on both store dialects: a read under way when the key changes does not fill the cache, a change
 * made here or by another replica (through the store and the change feed's drop) is never answered
 * from the cache, expired bindings (by their stored expiry and by the current TTL) are never
 * answered, a touch known to write nothing is skipped with the store's own answer, and the cache
 * holds at most its bound.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { RuntimeSettingsDocument, RuntimeSettingsReader } from "../../src/runtime-settings/store.ts";
import { StickyCache } from "../../src/sticky/cache.ts";
import { createStickyService } from "../../src/sticky/service.ts";
import { type StickyBinding, StickyStore, TOUCH_MIN_INTERVAL_MS } from "../../src/sticky/store.ts";
import type { Store } from "../../src/store/store.ts";
import { insertAccount, T0 } from "../balancing/fixtures.ts";
import { openTestStore, storeVariants } from "../support/stores.ts";

const TTL_S = 1800;
const TTL = TTL_S * 1000;

const binding = (key: string, accountId: string, updatedAt = T0, ttl = TTL): StickyBinding => ({
  key,
  kind: "session",
  accountId,
  createdAt: updatedAt,
  updatedAt,
  expiresAt: updatedAt + ttl,
});

/** A promise and its resolver. */
function gate<T>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    open = r;
  });
  return { promise, open };
}

describe("StickyCache", () => {
  test("a read under way when its key is dropped does not fill the cache; one begun after does", async () => {
    const c = new StickyCache();
    const g = gate<StickyBinding | null>();
    const reading = c.read("k", () => g.promise);
    c.drop("k"); // a change lands while the store is read
    g.open(binding("k", "a"));
    // The caller gets what it read; the cache stays empty.
    expect(await reading).toEqual(binding("k", "a"));
    expect(c.get("k", T0 + 1, TTL)).toBeNull();
    // Dropping every key stops a read under way too.
    const g2 = gate<StickyBinding | null>();
    const reading2 = c.read("k", () => g2.promise);
    c.drop(null);
    g2.open(binding("k", "a"));
    await reading2;
    expect(c.get("k", T0 + 1, TTL)).toBeNull();
    // A read begun after the drop fills it.
    await c.read("k", async () => binding("k", "b"));
    expect(c.get("k", T0 + 1, TTL)?.accountId).toBe("b");
  });

  test("of two reads of a key under way, only the later one fills; a read that finds nothing empties the entry", async () => {
    const c = new StickyCache();
    const first = gate<StickyBinding | null>();
    const second = gate<StickyBinding | null>();
    const r1 = c.read("k", () => first.promise);
    const r2 = c.read("k", () => second.promise);
    second.open(binding("k", "b"));
    await r2;
    first.open(binding("k", "a"));
    await r1;
    expect(c.get("k", T0 + 1, TTL)?.accountId).toBe("b");
    await c.read("k", async () => null);
    expect(c.get("k", T0 + 1, TTL)).toBeNull();
  });

  test("many reads of one key under way: the first answer fills at once, and none is left behind", async () => {
    const c = new StickyCache();
    const gates = Array.from({ length: 5 }, () => gate<StickyBinding | null>());
    const reads = gates.map((g) => c.read("k", () => g.promise));
    expect(c.reading).toBe(1);
    // The last begun answers first; the others (begun earlier) come back later with older views.
    gates[4]?.open(binding("k", "e"));
    await reads[4];
    expect(c.get("k", T0 + 1, TTL)?.accountId).toBe("e");
    for (const [i, g] of gates.slice(0, 4).entries()) g.open(binding("k", `old${i}`));
    await Promise.all(reads);
    expect(c.get("k", T0 + 1, TTL)?.accountId).toBe("e");
    expect(c.reading).toBe(0);
    // Concurrent misses of a key no read had filled: the first answer fills, though later-begun
    // reads are still under way (before, only the last begun could fill).
    const c2 = new StickyCache();
    const g1 = gate<StickyBinding | null>();
    const g2 = gate<StickyBinding | null>();
    const r1 = c2.read("k", () => g1.promise);
    const r2 = c2.read("k", () => g2.promise);
    g1.open(binding("k", "a"));
    await r1;
    expect(c2.get("k", T0 + 1, TTL)?.accountId).toBe("a");
    g2.open(binding("k", "a"));
    await r2;
    expect(c2.reading).toBe(0);
  });

  test("an entry is answered only before its expiry and before its last refresh plus the current TTL", async () => {
    const c = new StickyCache();
    await c.read("k", async () => binding("k", "a", T0));
    expect(c.get("k", T0 + TTL - 1, TTL)?.accountId).toBe("a");
    // A lowered TTL: the store's expiry may have been cut by another replica's touch.
    expect(c.get("k", T0 + 60_000, 60_000)).toBeNull();
    expect(c.get("k", T0 + 59_999, 60_000)?.accountId).toBe("a");
    // Expired: never answered, and forgotten.
    expect(c.get("k", T0 + TTL, TTL)).toBeNull();
    expect(c.size).toBe(0);
  });

  test("a touch here refreshes the entry of its account; of another account it drops it", async () => {
    const c = new StickyCache();
    await c.read("k", async () => binding("k", "a", T0));
    c.touched("k", "a", T0 + 20_000, TTL);
    expect(c.get("k", T0 + TTL + 1, TTL)).toMatchObject({
      updatedAt: T0 + 20_000,
      expiresAt: T0 + 20_000 + TTL,
    });
    expect(c.refreshedSince("k", "a", T0 + 19_999)).toBe(true);
    expect(c.refreshedSince("k", "b", T0)).toBe(false);
    c.touched("k", "b", T0 + 40_000, TTL);
    expect(c.get("k", T0 + 40_001, TTL)).toBeNull();
  });

  test("a read under way when a touch lands here does not put back the binding as it was before the touch", async () => {
    const c = new StickyCache();
    await c.read("k", async () => binding("k", "a", T0));
    const g = gate<StickyBinding | null>();
    const reading = c.read("k", () => g.promise);
    c.touched("k", "a", T0 + 20_000, TTL);
    g.open(binding("k", "a", T0)); // what the store held before the touch
    await reading;
    expect(c.get("k", T0 + TTL + 1, TTL)).toMatchObject({ updatedAt: T0 + 20_000 });
    expect(c.refreshedSince("k", "a", T0 + 19_999)).toBe(true);
    expect(c.reading).toBe(0);
  });

  test("bounded: beyond max entries the least recently read or refreshed goes first; prune drops the expired", async () => {
    const c = new StickyCache(3);
    for (const k of ["k1", "k2", "k3"]) await c.read(k, async () => binding(k, "a", T0));
    c.touched("k1", "a", T0 + 20_000, TTL); // k1 used again: k2 is now the oldest
    await c.read("k4", async () => binding("k4", "a", T0));
    expect(c.size).toBe(3);
    expect(c.get("k2", T0 + 1, TTL)).toBeNull();
    for (const k of ["k1", "k3", "k4"]) expect(c.get(k, T0 + 1, TTL)?.key).toBe(k);
    for (let i = 0; i < 1000; i++) await c.read(`many-${i}`, async () => binding(`many-${i}`, "a", T0));
    expect(c.size).toBe(3);
    c.prune(T0 + TTL);
    expect(c.size).toBe(0);
  });
});

for (const variant of storeVariants) {
  describe(`sticky service with its cache on ${variant.name}`, () => {
    const stores: Store[] = [];
    afterAll(async () => {
      for (const s of stores) await s.close();
    });

    /** A settings reader whose document is cached (the gateway's usual state) with this TTL. */
    const settingsWith = (ttlS: { value: number }): RuntimeSettingsReader => {
      const doc = () => ({ stickyTtlSeconds: ttlS.value, version: 1 }) as unknown as RuntimeSettingsDocument;
      return { get: async () => doc(), cached: doc };
    };

    /** Two replicas' services on one store (on SQLite: one file, as a test stand-in). */
    const fresh = async () => {
      const s = await openTestStore(variant, "sticky_cache");
      stores.push(s);
      for (const id of ["a", "b"]) await insertAccount(s.db, id);
      const ttl = { value: TTL_S };
      const here = new StickyStore(s.db);
      const there = new StickyStore(s.db);
      const service = (store: StickyStore) =>
        createStickyService(
          store,
          settingsWith(ttl),
          () => T0,
          async () => null,
        );
      return { s, ttl, here, there, a: service(here), b: service(there) };
    };

    test("a lookup fills the cache; a bind, forget or operator delete made here is read afresh", async () => {
      const { a, here } = await fresh();
      expect(a.cached("k")).toBeNull();
      expect(await a.bind("k", "session", "a", { now: T0, expected: null })).toBe(true);
      expect(a.cached("k", { now: T0 + 1 })).toBeNull(); // dropped by the bind, not filled by it
      expect((await a.lookup("k", { now: T0 + 1 }))?.accountId).toBe("a");
      expect(a.cached("k", { now: T0 + 1 })?.accountId).toBe("a");
      expect(await a.bind("k", "session", "b", { now: T0 + 2, expected: "a" })).toBe(true);
      expect(a.cached("k", { now: T0 + 3 })).toBeNull();
      await a.lookup("k", { now: T0 + 3 });
      expect(await a.forget("k", { expected: "b" })).toBe(true);
      expect(a.cached("k", { now: T0 + 4 })).toBeNull();
      await a.bind("k", "session", "a", { now: T0 + 5 });
      await a.lookup("k", { now: T0 + 5 });
      expect(await here.delete("k")).toBe(true); // DELETE /api/sticky-sessions/{key}
      expect(a.cached("k", { now: T0 + 6 })).toBeNull();
      expect(await a.lookup("k", { now: T0 + 6 })).toBeNull();
    });

    test("a read under way when a bind lands here does not put the old binding in the cache", async () => {
      const { s, ttl } = await fresh();
      const g = gate<void>();
      class SlowStore extends StickyStore {
        override async get(key: string, now: number) {
          const b = await super.get(key, now);
          await g.promise;
          return b;
        }
      }
      const slow = new SlowStore(s.db);
      const a = createStickyService(
        slow,
        settingsWith(ttl),
        () => T0,
        async () => null,
      );
      await a.bind("k", "session", "a", { now: T0 });
      const reading = a.lookup("k", { now: T0 + 1 }); // reads "a", then waits
      await Bun.sleep(20);
      const moving = a.bind("k", "session", "b", { now: T0 + 2, expected: "a" });
      await Bun.sleep(20);
      g.open();
      expect((await reading)?.accountId).toBe("a");
      expect(await moving).toBe(true);
      expect(a.cached("k", { now: T0 + 3 })).toBeNull();
      expect((await a.lookup("k", { now: T0 + 3 }))?.accountId).toBe("b");
    });

    test("another replica's move: answered from the cache only until the feed's drop arrives; then the store's", async () => {
      const { a, b } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      expect(await b.bind("k", "session", "b", { now: T0 + 1, expected: "a" })).toBe(true);
      // What the cache may lag by: the feed's delivery (the app drops the key on topic `sticky`).
      a.forgetCached("k");
      expect(a.cached("k", { now: T0 + 2 })).toBeNull();
      expect((await a.lookup("k", { now: T0 + 2 }))?.accountId).toBe("b");
      expect(a.cached("k", { now: T0 + 2 })?.accountId).toBe("b");
      // Another replica forgets it; after the drop this one reads "none".
      expect(await b.forget("k")).toBe(true);
      a.forgetCached(null); // the feed re-opened: every key dropped
      expect(a.cached("k", { now: T0 + 3 })).toBeNull();
      expect(await a.lookup("k", { now: T0 + 3 })).toBeNull();
    });

    test("expiry: another replica's touch only moves the stored expiry later, so the cached one lapses first", async () => {
      const { a, b } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      expect(await b.touch("k", { now: T0 + TTL / 2, accountId: "a" })).toBe(true);
      expect(a.cached("k", { now: T0 + TTL - 1 })?.accountId).toBe("a");
      // Past the cached expiry: unknown (not "none"), and the store still has it.
      expect(a.cached("k", { now: T0 + TTL })).toBeNull();
      expect(await a.lookup("k", { now: T0 + TTL })).toMatchObject({
        accountId: "a",
        expiresAt: T0 + TTL / 2 + TTL,
      });
      // Expired everywhere: never answered.
      expect(a.cached("k", { now: T0 + TTL / 2 + TTL })).toBeNull();
      expect(await a.lookup("k", { now: T0 + TTL / 2 + TTL })).toBeNull();
    });

    test("a lowered TTL written by another replica's touch is honoured by the cached binding", async () => {
      const { a, b, ttl } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      ttl.value = 60; // both replicas now run with a 60 s TTL
      expect(await b.touch("k", { now: T0 + 30_000, accountId: "a" })).toBe(true); // expires T0 + 90 s
      expect(a.cached("k", { now: T0 + 59_999 })?.accountId).toBe("a");
      expect(a.cached("k", { now: T0 + 60_000 })).toBeNull();
      expect(await a.lookup("k", { now: T0 + 90_000 })).toBeNull();
    });

    test("touch: skipped with the store's answer (false) while the cached binding was refreshed within the interval", async () => {
      const { s, a } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      let updates = 0;
      const counting = s.db.withPlugin({
        transformQuery: (args) => {
          if (args.node.kind === "UpdateQueryNode") updates++;
          return args.node;
        },
        transformResult: async (args) => args.result,
      });
      const service = createStickyService(
        new StickyStore(counting),
        settingsWith({ value: TTL_S }),
        () => T0,
        async () => null,
      );
      await service.lookup("k", { now: T0 });
      expect(service.touchSkips("k", { now: T0 + 1000, accountId: "a" })).toBe(true);
      expect(service.touchSkips("k", { now: T0 + 1000, accountId: "b" })).toBe(false);
      expect(await service.touch("k", { now: T0 + 1000, accountId: "a" })).toBe(false);
      expect(updates).toBe(0);
      // Past the interval the store is written and the cache follows.
      expect(service.touchSkips("k", { now: T0 + TOUCH_MIN_INTERVAL_MS, accountId: "a" })).toBe(false);
      expect(await service.touch("k", { now: T0 + TOUCH_MIN_INTERVAL_MS, accountId: "a" })).toBe(true);
      expect(updates).toBe(1);
      expect(service.cached("k", { now: T0 + TOUCH_MIN_INTERVAL_MS + 1 })).toMatchObject({
        updatedAt: T0 + TOUCH_MIN_INTERVAL_MS,
        expiresAt: T0 + TOUCH_MIN_INTERVAL_MS + TTL,
      });
      expect(service.touchSkips("k", { now: T0 + TOUCH_MIN_INTERVAL_MS + 1, accountId: "a" })).toBe(true);
    });

    test("a touch the store refused although the cache expected a write drops the entry (it was behind)", async () => {
      const { a, b } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      // Another replica refreshed it; this one's cache still has updatedAt T0.
      expect(await b.touch("k", { now: T0 + 20_000, accountId: "a" })).toBe(true);
      expect(await a.touch("k", { now: T0 + 25_000, accountId: "a" })).toBe(false);
      expect(a.cached("k", { now: T0 + 25_001 })).toBeNull();
      expect(await a.lookup("k", { now: T0 + 25_001 })).toMatchObject({ updatedAt: T0 + 20_000 });
    });

    test("sweep forgets the cached bindings it expired", async () => {
      const { a } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      expect(await a.sweep({ now: T0 + TTL })).toBe(1);
      expect(a.cached("k", { now: T0 })).toBeNull();
    });

    test("a forget that matched nothing drops what the cache holds for the key, as a stale bind does", async () => {
      const { a, b } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      await b.forget("k"); // removed through another replica; the feed's drop not yet here
      expect(a.cached("k", { now: T0 + 1 })?.accountId).toBe("a");
      expect(await a.forget("k", { expected: "a" })).toBe(false);
      expect(a.cached("k", { now: T0 + 2 })).toBeNull();
      expect(await a.lookup("k", { now: T0 + 2 })).toBeNull();
    });

    test("a binding the cache keeps cannot be changed by a reader (every later reader gets that object)", async () => {
      const { a } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      const read = (await a.lookup("k", { now: T0 }))!;
      // A plugin that changes what `lookup` gave it (the types say readonly; JavaScript does not).
      expect(() => {
        (read as { accountId: string }).accountId = "b";
      }).toThrow(TypeError);
      const cached = a.cached("k", { now: T0 + 1 })!;
      expect(() => {
        (cached as { expiresAt: number }).expiresAt = T0 + 10 * TTL;
      }).toThrow(TypeError);
      expect(a.cached("k", { now: T0 + 1 })).toMatchObject({ accountId: "a", expiresAt: T0 + TTL });
      // A refresh made here keeps a frozen entry too.
      expect(await a.touch("k", { now: T0 + TOUCH_MIN_INTERVAL_MS, accountId: "a" })).toBe(true);
      expect(Object.isFrozen(a.cached("k", { now: T0 + TOUCH_MIN_INTERVAL_MS }))).toBe(true);
    });

    test("a stale compare-and-set bind drops what the cache holds for the key", async () => {
      const { a, b } = await fresh();
      await a.bind("k", "session", "a", { now: T0 });
      await a.lookup("k", { now: T0 });
      await b.bind("k", "session", "b", { now: T0 + 1, expected: "a" }); // the feed's drop not yet here
      expect(a.cached("k", { now: T0 + 2 })?.accountId).toBe("a");
      expect(await a.bind("k", "session", "a", { now: T0 + 2, expected: null })).toBe(false);
      expect(a.cached("k", { now: T0 + 3 })).toBeNull();
    });
  });
}
