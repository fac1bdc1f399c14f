import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { Pruner, pruneOnce } from "../../src/retention/pruner.ts";
import type { Store } from "../../src/store/store.ts";
import { openTestStore, storeVariants } from "../support/stores.ts";

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;
for (const variant of storeVariants)
  describe(`retention on ${variant.name}`, () => {
    let store: Store;
    const dialect = variant.name;

    beforeEach(async () => {
      store = await openTestStore(variant, "retention");
      await store.db
        .insertInto("api_keys")
        .values({
          id: "k1",
          name: "k",
          key_hash: "h",
          key_prefix: "sk-clb-x",
          is_active: 1,
          expires_at: null,
          allowed_models: null,
          created_at: 0,
          updated_at: 0,
          last_used_at: null,
        })
        .execute();
    });
    afterEach(async () => {
      await store.close();
    });

    async function logRows(ages: readonly number[]) {
      await store.db
        .insertInto("request_logs")
        .values(
          ages.map((ageDays, i) => ({
            requested_at: NOW - ageDays * DAY,
            request_id: `r${i}`,
            account_id: null,
            api_key_id: "k1",
            model: "gpt-5.2",
            endpoint: "/v1/responses",
            client: null,
            client_ip: null,
            status: "success",
            http_status: 200,
            error_code: null,
            error_message: null,
            input_tokens: 10,
            cached_input_tokens: 0,
            output_tokens: 5,
            reasoning_tokens: null,
            cost_usd: 0.01,
            latency_ms: 5,
            ttfb_ms: 1,
            response_id: null,
            session_key: null,
            reasoning_effort: null,
          })),
        )
        .execute();
    }
    const count = async (table: "request_logs" | "audit_logs" | "api_key_usage_hourly") =>
      Number(
        (
          await store.db
            .selectFrom(table)
            .select((e) => e.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const usageSum = async () =>
      Number(
        (
          await store.db
            .selectFrom("api_key_usage_hourly")
            .select((e) => e.fn.sum<number>("requests").as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );

    const policy = { requestLogDays: 30, auditDays: 365, usageDays: 730 };
    const silent = { info: () => {}, error: () => {} };
    test("on a fake clock: nothing before the first run; then rows past their days go, usage buckets stay", async () => {
      await logRows([1, 29, 31, 45, 800]);
      for (const [age, action] of [
        [10, "api_key.created"],
        [400, "admin.login"],
      ] as const)
        await store.db
          .insertInto("audit_logs")
          .values({ at: NOW - age * DAY, action, actor_ip: null, request_id: null, details: null })
          .execute();
      const clock = new FakeClock(NOW);
      const pruner = new Pruner(store.db, dialect, clock, policy, silent, {
        firstDelayMs: 60_000,
        intervalMs: 3_600_000,
        pause: async () => {},
      });
      pruner.start();
      expect(await usageSum()).toBe(5);
      await clock.advance(59_000);
      expect(await count("request_logs")).toBe(5);
      await clock.advance(1_000);
      // Let the prune (real store I/O) finish.
      await pruner.runNow();
      expect(await count("request_logs")).toBe(2);
      expect(await count("audit_logs")).toBe(1);
      // The 800-day bucket is past usage retention; the 31- and 45-day ones are still counted.
      expect(await usageSum()).toBe(4);
      // An hour later the 29-day-old row is still young enough; 2 days later it is not.
      await clock.advance(2 * DAY);
      // The hourly run the advance fired may still be going (it saw the time of its hour): wait for
      // it, then prune as of now.
      await pruner.runNow();
      await pruner.runNow();
      expect(await count("request_logs")).toBe(1);
      expect(await usageSum()).toBe(4);
      await pruner.stop();
      expect(clock.pending).toBe(0);
    });

    test("an ordinary delete still subtracts from the bucket; a prune does not", async () => {
      await logRows([40, 40]);
      await store.db.deleteFrom("request_logs").where("request_id", "=", "r0").execute();
      expect(await usageSum()).toBe(1);
      const r = await pruneOnce(store.db, dialect, NOW, policy);
      expect(r.requestLogs).toBe(1);
      expect(await usageSum()).toBe(1);
      const flag = await store.db.selectFrom("retention_state").selectAll().executeTakeFirstOrThrow();
      expect(Number(flag.pruning)).toBe(0);
    });

    test("deletes in bounded batches and pauses between them", async () => {
      await logRows(Array.from({ length: 250 }, () => 60));
      let pauses = 0;
      const r = await pruneOnce(store.db, dialect, NOW, policy, {
        batch: 100,
        pause: async () => {
          pauses++;
        },
      });
      expect(r.requestLogs).toBe(250);
      expect(pauses).toBe(2);
      expect(r.batches).toBeGreaterThanOrEqual(3);
      expect(await count("request_logs")).toBe(0);
    });
  });
