/**
 * The rule every cache filled from a store read follows (src/core/fill-guard.ts): a read under way
 * when its key (or every key) is dropped does not fill; of reads of one key under way together, one
 * begun earlier never replaces what one begun later put in; any other read fills, the first answer
 * to come back included; a failed read fills nothing; nothing is left behind once reads end.
 */
import { describe, expect, test } from "bun:test";
import { FillGuard } from "../../src/core/fill-guard.ts";

/** A promise and its resolver (and rejecter). */
function gate<T>(): { promise: Promise<T>; open: (v: T) => void; fail: (e: Error) => void } {
  let open!: (v: T) => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** A fill that records `[key, value]` in `fills`. */
function into(fills: [string, string][], key: string): (v: string) => void {
  return (v) => {
    fills.push([key, v]);
  };
}

/** A guard and the cache it guards: the values filled, per key, in fill order. */
function cacheOf(): { guard: FillGuard<string>; fills: [string, string][] } {
  return { guard: new FillGuard<string>(), fills: [] };
}

describe("FillGuard", () => {
  test("a read with nothing else going on fills, and leaves nothing behind", async () => {
    const { guard, fills } = cacheOf();
    expect(await guard.read("k", async () => "v", into(fills, "k"))).toBe("v");
    expect(fills).toEqual([["k", "v"]]);
    expect(guard.pending).toBe(0);
  });

  test("a read under way when its key is dropped does not fill; its caller still gets what it read", async () => {
    const { guard, fills } = cacheOf();
    const g = gate<string>();
    const reading = guard.read("k", () => g.promise, into(fills, "k"));
    guard.drop("k");
    g.open("old");
    expect(await reading).toBe("old");
    expect(fills).toEqual([]);
    expect(guard.pending).toBe(0);
    // A read begun after the drop fills.
    await guard.read("k", async () => "new", into(fills, "k"));
    expect(fills).toEqual([["k", "new"]]);
  });

  test("dropping every key stops every read under way; dropping another key stops none", async () => {
    const { guard, fills } = cacheOf();
    const a = gate<string>();
    const b = gate<string>();
    const c = gate<string>();
    const ra = guard.read("a", () => a.promise, into(fills, "a"));
    const rb = guard.read("b", () => b.promise, into(fills, "b"));
    guard.drop();
    const rc = guard.read("c", () => c.promise, into(fills, "c"));
    guard.drop("a");
    a.open("1");
    b.open("2");
    c.open("3");
    await Promise.all([ra, rb, rc]);
    expect(fills).toEqual([["c", "3"]]);
    expect(guard.pending).toBe(0);
  });

  test("of reads of one key under way together, the first answer fills and an earlier-begun one never replaces a later-begun one's", async () => {
    const { guard, fills } = cacheOf();
    const first = gate<string>();
    const second = gate<string>();
    const third = gate<string>();
    const r1 = guard.read("k", () => first.promise, into(fills, "k"));
    const r2 = guard.read("k", () => second.promise, into(fills, "k"));
    const r3 = guard.read("k", () => third.promise, into(fills, "k"));
    // The second begun answers first: it fills at once (it does not wait for the third).
    second.open("b");
    await r2;
    expect(fills).toEqual([["k", "b"]]);
    // The first begun answers late: older than what is in, so it does not replace it.
    first.open("a");
    expect(await r1).toBe("a");
    expect(fills).toEqual([["k", "b"]]);
    // The third begun is newer than the second: it replaces it.
    third.open("c");
    await r3;
    expect(fills).toEqual([
      ["k", "b"],
      ["k", "c"],
    ]);
    expect(guard.pending).toBe(0);
  });

  test("a drop between reads of one key stops only those begun before it", async () => {
    const { guard, fills } = cacheOf();
    const before = gate<string>();
    const after = gate<string>();
    const r1 = guard.read("k", () => before.promise, into(fills, "k"));
    guard.drop("k");
    const r2 = guard.read("k", () => after.promise, into(fills, "k"));
    before.open("stale");
    await r1;
    expect(guard.pending).toBe(1); // the read begun after the drop is still under way
    after.open("fresh");
    await r2;
    expect(fills).toEqual([["k", "fresh"]]);
    expect(guard.pending).toBe(0);
  });

  test("a failed read fills nothing, passes its error on, and leaves nothing behind", async () => {
    const { guard, fills } = cacheOf();
    const g = gate<string>();
    const reading = guard.read("k", () => g.promise, into(fills, "k"));
    g.fail(new Error("store down"));
    await expect(reading).rejects.toThrow("store down");
    expect(fills).toEqual([]);
    expect(guard.pending).toBe(0);
  });
});
