import { expect, test } from "bun:test";
import { KeyStateCache } from "../../src/access/api-keys/state-cache.ts";

const state = (resetsAt: number) =>
  ({
    key: { id: "k1" },
    limits: [{ resetsAt, reached: false }],
  }) as never;

test("a cached key state lives until its TTL, a window reset, or an invalidation", () => {
  const c = new KeyStateCache(1000);
  c.set("k1", state(10_000), 0);
  expect(c.get("k1", 999)).toBeDefined();
  expect(c.get("k1", 1000)).toBeUndefined(); // TTL
  c.set("k1", state(500), 0);
  expect(c.get("k1", 499)).toBeDefined();
  expect(c.get("k1", 500)).toBeUndefined(); // a window reset passed: usage dropped
  c.set("k1", state(10_000), 0);
  c.set("k2", state(10_000), 0);
  c.invalidate("k1"); // its request-log rows were written
  expect(c.get("k1", 1)).toBeUndefined();
  expect(c.get("k2", 1)).toBeDefined();
  c.invalidate(null); // a keyless row changes nothing
  expect(c.get("k2", 1)).toBeDefined();
  c.invalidate(); // a key was edited
  expect(c.get("k2", 1)).toBeUndefined();
});

test("admission remembers the record a presented key resolved to; usage writes keep it, key edits and the TTL drop it", () => {
  const c = new KeyStateCache(1000);
  const rec = { id: "k1", lastUsedAt: null } as never;
  c.setPresented("sk-clb-a", rec, 0);
  expect(c.presented("sk-clb-a", 10)).toBe(rec);
  expect(c.presented("sk-clb-b", 10)).toBeUndefined();
  c.invalidate("k1"); // its request-log rows were written: the record itself did not change
  expect(c.presented("sk-clb-a", 10)?.id).toBe("k1");
  c.touched("sk-clb-a", 500);
  expect(c.presented("sk-clb-a", 600)?.lastUsedAt).toBe(500);
  expect(c.presented("sk-clb-a", 1000)).toBeUndefined(); // TTL
  c.setPresented("sk-clb-a", rec, 0);
  c.invalidate(); // a key was edited
  expect(c.presented("sk-clb-a", 10)).toBeUndefined();
});
