/**
 * The change feed's sends: a publish goes out at once when no send is under way; those made while
 * one is under way go together in the next statement (one round trip, however many), each still a
 * message of its own that replicas of an earlier version read; nothing published is lost, on a
 * failed send or at a stop. Then the same on a real PostgreSQL: a burst of 300 sticky changes
 * reaches the other replica whole in a handful of statements.
 */
import { afterAll, describe, expect, test } from "bun:test";
import pg from "pg";
import { createChangeFeed } from "../../src/cluster/feed.ts";
import { type Notifications, pgNotifications } from "../../src/store/postgres.ts";
import { createTestDatabase } from "../support/postgres.ts";

/** Notifications whose sends wait until the test lets them end. */
function gatedNotifications(opts: { failFirst?: boolean } = {}) {
  const sends: string[][] = [];
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const n: Notifications = {
    notify(_channel, payloads) {
      sends.push([...payloads]);
      return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
    },
    listen: () => Promise.resolve(async () => {}),
  };
  let failed = false;
  const release = async () => {
    const p = pending.shift();
    if (!p) throw new Error("no send under way");
    if (opts.failFirst && !failed) {
      failed = true;
      p.reject(new Error("connection lost"));
    } else p.resolve();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { n, sends, release, pending };
}

const keyOf = (payload: string) => (JSON.parse(payload) as { k: string | null }).k;

describe("change feed sends", () => {
  test("the first publish goes at once; those made meanwhile go together next, the same change once", async () => {
    const g = gatedNotifications();
    const errors: unknown[] = [];
    const feed = createChangeFeed("r1", g.n, (e) => errors.push(e));
    feed.publish("sticky", "k0");
    expect(g.sends.map((b) => b.map(keyOf))).toEqual([["k0"]]);
    for (let i = 1; i <= 99; i++) feed.publish("sticky", `k${i}`);
    feed.publish("sticky", "k5");
    feed.publish("accounts");
    expect(g.sends).toHaveLength(1);
    await g.release();
    expect(g.sends).toHaveLength(2);
    const second = g.sends[1] ?? [];
    expect(second.map(keyOf)).toEqual([...Array.from({ length: 99 }, (_, i) => `k${i + 1}`), null]);
    // Each a message of its own, in the form replicas of an earlier version read.
    expect(JSON.parse(second[0] ?? "")).toEqual({ o: "r1", t: "sticky", k: "k1" });
    expect(JSON.parse(second[99] ?? "")).toEqual({ o: "r1", t: "accounts", k: null });
    await g.release();
    expect(g.sends).toHaveLength(2);
    // Idle again: the next publish goes at once.
    feed.publish("firewall");
    expect(g.sends).toHaveLength(3);
    await g.release();
    expect(errors).toEqual([]);
  });

  test("a failed send is reported and what waited is still sent", async () => {
    const g = gatedNotifications({ failFirst: true });
    const errors: unknown[] = [];
    const feed = createChangeFeed("r1", g.n, (e) => errors.push(e));
    feed.publish("sticky", "a");
    feed.publish("sticky", "b");
    await g.release();
    expect(errors.map((e) => (e as Error).message)).toEqual(["connection lost"]);
    expect(g.sends.map((b) => b.map(keyOf))).toEqual([["a"], ["b"]]);
    await g.release();
  });

  test("a stop waits until what was published is sent", async () => {
    const g = gatedNotifications();
    const feed = createChangeFeed("r1", g.n, () => {});
    feed.publish("sticky", "a");
    feed.publish("sticky", "b");
    let stopped = false;
    const stopping = feed.stop().then(() => {
      stopped = true;
    });
    await g.release();
    expect(stopped).toBe(false);
    await g.release();
    await stopping;
    expect(stopped).toBe(true);
    expect(g.sends.map((b) => b.map(keyOf))).toEqual([["a"], ["b"]]);
  });
});

describe("change feed on PostgreSQL", () => {
  const pools: pg.Pool[] = [];
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const s of stops) await s();
    for (const p of pools) await p.end();
  });
  /** Replicas A and B on `n`, started; the sticky keys B hears of; errors of either into `errors`. */
  const twoReplicas = async (n: Notifications, errors: unknown[]) => {
    const a = createChangeFeed("replica-a", n, (e) => errors.push(e));
    const b = createChangeFeed("replica-b", n, (e) => errors.push(e));
    const got: (string | null)[] = [];
    b.subscribe("sticky", (k) => got.push(k));
    await a.start();
    await b.start();
    stops.push(
      () => a.stop(),
      () => b.stop(),
    );
    return { a, got };
  };

  test("a burst of 300 sticky changes reaches the other replica whole, in a few statements", async () => {
    const url = await createTestDatabase("feed_batch");
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pools.push(pool);
    const statements: string[] = [];
    const counted = new Proxy(pool, {
      get(target, prop, receiver) {
        if (prop === "query")
          return (text: string, values: unknown[]) => {
            statements.push(text);
            return target.query(text, values);
          };
        return Reflect.get(target, prop, receiver);
      },
    });
    const n = pgNotifications(url, counted);
    const errors: unknown[] = [];
    const { a, got } = await twoReplicas(n, errors);
    const keys = Array.from({ length: 300 }, (_, i) => `burst-${i}-${"x".repeat(i % 40)}`);
    for (const k of keys) a.publish("sticky", k);
    for (let i = 0; i < 200 && got.length < keys.length; i++) await Bun.sleep(10);
    expect(got).toEqual(keys);
    // One for the first, then one per batch of what waited (one send at a time).
    expect(statements.length).toBeGreaterThanOrEqual(2);
    expect(statements.length).toBeLessThanOrEqual(4);
    expect(errors).toEqual([]);
  });

  test("more than a statement's worth of the largest messages (512-character keys, escaped) arrive whole, in order", async () => {
    const url = await createTestDatabase("feed_large");
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pools.push(pool);
    const n = pgNotifications(url, pool);
    const errors: unknown[] = [];
    const { a, got } = await twoReplicas(n, errors);
    // The longest keys a request can carry (plugins/balancing/affinity.ts), each escaped in JSON
    // to the most bytes: control characters and lone surrogates (6 each), astral characters (4 a pair).
    const kinds = [
      (i: number) => `${i}${String.fromCharCode(i % 32).repeat(512)}`,
      (i: number) => `${i}${"\ud800".repeat(512)}`,
      (i: number) => `${i}${"😀".repeat(256)}`,
      (i: number) => `'"\\{},${i}`,
    ];
    const keys = Array.from({ length: 1100 }, (_, i) => kinds[i % kinds.length]!(i).slice(0, 512));
    expect(new Set(keys).size).toBe(keys.length);
    const largest = Math.max(
      ...keys.map((k) => Buffer.byteLength(JSON.stringify({ o: "replica-a", t: "sticky", k }))),
    );
    expect(largest).toBeGreaterThan(3000);
    expect(largest).toBeLessThan(8000); // PostgreSQL's limit for one payload
    for (const k of keys) a.publish("sticky", k);
    for (let i = 0; i < 500 && got.length < keys.length; i++) await Bun.sleep(10);
    expect(errors).toEqual([]);
    expect(got).toEqual(keys);
  });
});
