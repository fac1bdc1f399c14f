/**
 * The allowlist's cache (src/firewall/store.ts): a read of the store that was under way when the list
 * changed (here, or on another replica) does not put the list it read back into the cache.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FirewallStore } from "../../src/firewall/store.ts";
import { openMigratedStore, type Store } from "../../src/store/store.ts";

let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "codex-lb-firewall-cache-"));
  store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const how of ["forget", "invalidate"] as const) {
  test(`a read under way when the list is dropped (${how}) does not fill the cache`, async () => {
    const fw = new FirewallStore(store.db);
    await fw.add("203.0.113.0/24", 1);
    const reading = fw.allowlist();
    // Another replica changed the list (forget) or the table was written elsewhere (invalidate).
    fw[how]();
    expect(await reading).toEqual(["203.0.113.0/24"]);
    expect(fw.cached()).toBeNull();
    expect(await fw.remove("203.0.113.0/24")).toBe(true);
    // The next read sees the store as it is now, and is cached.
    const now = await fw.allowlist();
    expect(now).toEqual([]);
    expect(fw.cached()).toBe(now);
  });
}

test("a change made here while a read is under way does not let that read fill the cache", async () => {
  const fw = new FirewallStore(store.db);
  const reading = fw.allowlist();
  await fw.add("198.51.100.7", 3);
  await reading;
  expect(fw.cached()).toBeNull();
  expect(await fw.allowlist()).toEqual(["198.51.100.7"]);
});
