/**
 * A reservation's model is the client's text: a name the pricing table does not list is unpriced,
 * whatever it is, on both store dialects and both SQLite paths (the group commit and Kysely's
 * transaction). Before, `constructor` and `__proto__` found what every object inherits and priced
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

describe.each(paths)("model names of reservations ($variant.name, group commit: $grouped)", ({
  variant,
  grouped,
}) => {
  test("holds of models named constructor and __proto__ fit a cost limit, beside a priced one", async () => {
    const store = await openTestStore(variant, "reservation-model-names");
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
});
