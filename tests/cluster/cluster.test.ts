/**
 * The cluster's building blocks on both dialects, with a fake clock: the leader lease (taken,
 * renewed, lapsing when its holder stops beating, handed over at once on a clean stop), and the
 * refresh claims (one holder per token generation, others busy, a failure reported, a lapsed or
 * outdated claim taken over).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { LEASE_MS, LeaderElection } from "../../src/cluster/leader.ts";
import { RefreshClaims } from "../../src/cluster/refresh-claims.ts";
import type { Store } from "../../src/store/store.ts";
import { openTestStore, storeVariants } from "../support/stores.ts";

const quiet = { info: () => {}, warn: () => {} };

for (const variant of storeVariants) {
  describe(`cluster on ${variant.name}`, () => {
    const stores: Store[] = [];
    afterAll(async () => {
      for (const s of stores) await s.close();
    });
    const fresh = async () => {
      const s = await openTestStore(variant, "cluster");
      stores.push(s);
      await s.db
        .insertInto("accounts")
        .values({ id: "a", codex_installation_id: "i", created_at: 1, updated_at: 1 })
        .execute();
      return s;
    };

    test("one leader; it renews; a silent leader's lease lapses and another takes it; a clean stop hands it over", async () => {
      const store = await fresh();
      let now = 1_000_000;
      const clock = {
        now: () => now,
        setTimeout: () => ({ __timer: true as const }),
        clearTimeout: () => {},
      };
      const a = new LeaderElection(store.db, clock, "t", quiet);
      const b = new LeaderElection(store.db, clock, "t", quiet);
      await a.beat();
      await b.beat();
      expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
      now += 1_000;
      await a.beat();
      await b.beat();
      expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
      const seen = await b.replicas();
      expect(seen.find((r) => r.id === a.id)).toMatchObject({ leader: true, self: false });
      expect(seen.find((r) => r.id === b.id)).toMatchObject({ leader: false, self: true });
      expect(seen.length).toBe(2);
      // a goes silent (killed): b takes over once the lease lapsed, not before.
      now += LEASE_MS - 1;
      await b.beat();
      expect(b.isLeader()).toBe(false);
      expect(a.isLeader()).toBe(false); // its own margin ran out too: it no longer acts as leader
      now += 2;
      await b.beat();
      expect(b.isLeader()).toBe(true);
      await a.beat();
      expect(a.isLeader()).toBe(false);
      // A clean stop releases the lease at once.
      await b.stop();
      await a.beat();
      expect(a.isLeader()).toBe(true);
      expect((await a.replicas()).map((r) => r.id)).toEqual([a.id]);
    }, 30_000);

    test("refresh claims: one holder per token generation, a failure reported, lapsed or outdated claims taken", async () => {
      const store = await fresh();
      let now = 5_000_000;
      const clock = () => now;
      const r1 = new RefreshClaims(store.db, "r1", clock);
      const r2 = new RefreshClaims(store.db, "r2", clock);
      const first = await r1.claim("a", "rt-1", 10_000);
      expect(first.status).toBe("claimed");
      expect((await r2.claim("a", "rt-1", 10_000)).status).toBe("busy");
      // Success ends the claim: the next generation can be claimed by anyone.
      if (first.status === "claimed") await first.done();
      const second = await r2.claim("a", "rt-2", 10_000);
      expect(second.status).toBe("claimed");
      // A claim on an older generation than the stored token does not block the newer one.
      expect((await r1.claim("a", "rt-3", 10_000)).status).toBe("claimed");
      expect((await r2.claim("a", "rt-3", 10_000)).status).toBe("busy");
      // A lapsed claim (its holder died) is taken over.
      now += 10_001;
      const third = await r2.claim("a", "rt-3", 10_000);
      expect(third.status).toBe("claimed");
      const failure = { code: "refresh_failed", message: "upstream 503", dead: false };
      if (third.status === "claimed") await third.done(failure, 5_000);
      expect(await r1.claim("a", "rt-3", 10_000)).toEqual({ status: "failed", failure });
      now += 5_001;
      expect((await r1.claim("a", "rt-3", 10_000)).status).toBe("claimed");
      // Deleting the account deletes its claim.
      await store.db.deleteFrom("accounts").where("id", "=", "a").execute();
      expect(await store.db.selectFrom("refresh_claims").selectAll().execute()).toEqual([]);
    }, 30_000);
  });
}
