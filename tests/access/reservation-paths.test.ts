/**
 * Reservations on every path that decides them: SQLite's group commit, Kysely's transaction on
 * SQLite, and PostgreSQL.
 *
 * A reservation's model is the client's text: a name the pricing table does not list is unpriced,
 * whatever it is. Before, `constructor` and `__proto__` found what every object inherits and priced
 * the estimate NaN: the insert failed its NOT NULL cost, and on SQLite with it every other hold of
 * the same group commit.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createApiKey } from "../../src/access/api-keys/repository.ts";
import { LimitReservations } from "../../src/access/api-keys/reservations.ts";
import type { Store } from "../../src/store/store.ts";
import { openTestStore, storeVariants } from "../support/stores.ts";

const silent = { warn: () => {}, info: () => {} };
const open: Store[] = [];
afterAll(async () => {
  for (const s of open) await s.close();
});

const paths = storeVariants.flatMap((variant) =>
  variant.name === "sqlite"
    ? [
        { variant, grouped: true },
        { variant, grouped: false },
      ]
    : [{ variant, grouped: false }],
);

describe.each(paths)(
  "model names of reservations ($variant.name, group commit: $grouped)",
  ({ variant, grouped }) => {
    test("holds of models named constructor and __proto__ fit a cost limit, beside a priced one", async () => {
      const store = await openTestStore(variant, "reservation-paths");
      open.push(store);
      const now = Date.UTC(2026, 0, 12, 9, 13);
      const { record } = await createApiKey(
        store.db,
        { name: "names", limits: [{ limitType: "cost_usd", limitWindow: "daily", maxValue: 100 }] },
        now,
      );
      const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
      const r = new LimitReservations(store.db, silent, undefined, grouped ? store.sqlite : undefined);
      const models = ["gpt-5.4", "constructor", "__proto__", "gpt-5.4"];
      // Asked for in one turn: on SQLite's group commit they share one transaction.
      const outcomes = await Promise.allSettled(
        models.map((model, i) => r.hold(key, { requestId: `n${i}`, model, payload: {} }, now)),
      );
      expect(outcomes.map((o) => (o.status === "fulfilled" ? "held" : String(o.reason)))).toEqual(
        models.map(() => "held"),
      );
      const rows = await store.db
        .selectFrom("api_key_reservations")
        .select(["model", "cost_usd", "output_tokens"])
        .where("api_key_id", "=", key.id)
        .orderBy("request_id")
        .execute();
      // An empty body: 1 input token, 4,096 output tokens; gpt-5.4 costs $15 per million output.
      expect(rows.map((x) => [x.model, Number(x.cost_usd), Number(x.output_tokens)])).toEqual([
        ["gpt-5.4", (2.5 + 4096 * 15) / 1e6, 4096],
        ["constructor", 0, 4096],
        ["__proto__", 0, 4096],
        ["gpt-5.4", (2.5 + 4096 * 15) / 1e6, 4096],
      ]);
    });
  },
);

/** The figures a hold decides on: the window's logged usage, one model or several, plus the reservations held. */
describe.each(paths)(
  "the figures a hold reads ($variant.name, group commit: $grouped)",
  ({ variant, grouped }) => {
    const now = Date.UTC(2026, 0, 13, 9, 13);
    const cases = [
      // gpt-5.4: $2.5 / $15 per million input / output; gpt-5.4-mini: $0.75 / $4.5.
      { name: "one model", models: ["gpt-5.4", "gpt-5.4"], logged: 2 * (2.5 + 15) },
      { name: "two models", models: ["gpt-5.4", "gpt-5.4-mini"], logged: 2.5 + 15 + 0.75 + 4.5 },
      { name: "nothing logged", models: [], logged: 0 },
    ];
    test.each(cases)("$name: logged usage plus the reservations held", async ({ models, logged }) => {
      const store = await openTestStore(variant, "reservation-figures");
      open.push(store);
      const { record } = await createApiKey(
        store.db,
        { name: "figures", limits: [{ limitType: "cost_usd", limitWindow: "daily", maxValue: 1000 }] },
        now,
      );
      const key = { id: record.id, createdAt: record.createdAt, limits: record.limits };
      for (const [i, model] of models.entries())
        await store.db
          .insertInto("request_logs")
          .values({
            requested_at: now + i,
            request_id: `logged-${i}`,
            api_key_id: key.id,
            model,
            endpoint: "/v1/responses",
            status: "success",
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
          })
          .execute();
      const r = new LimitReservations(store.db, silent, undefined, grouped ? store.sqlite : undefined);
      // An empty body and 40,000,000 output tokens of gpt-5.4: $600 (plus 1 input token) reserved.
      const body = { max_output_tokens: 40_000_000 };
      const big = { requestId: "big", model: "gpt-5.4", payload: {}, body };
      expect(await r.hold(key, big, now + 60_000)).not.toBeNull();
      const reserved = (2.5 + 40_000_000 * 15) / 1e6;
      // In flight beside it, the same estimate no longer fits; the message gives the figure read.
      const refused = await r.hold(key, { ...big, requestId: "next" }, now + 61_000).then(
        () => "held",
        (e: unknown) => (e instanceof Error ? e.message : String(e)),
      );
      expect(refused).toContain("would be exceeded by the requests in flight");
      expect(refused).toContain(`(${Number((logged + reserved).toFixed(6))} used or reserved)`);
    });
  },
);
