/**
 * Property-based fuzz of every operation in `/docs/json` (bounded so CI stays fast; the larger run
 * is `bun run scripts/fuzz.ts`): 0 answers of 5xx, every error in the JSON envelope.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { fuzzAll } from "./walk.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { CODEX_LB_OAUTH_CALLBACK_PORT: "0", CODEX_LB_LOG_LEVEL: "warn" } });
});
afterAll(async () => {
  await gw.stop();
});

test("every /docs/json operation survives generated hostile input: no 5xx, JSON error envelopes", async () => {
  const { operations, requests, problems } = await fuzzAll(gw, 4);
  expect(operations).toBeGreaterThan(30);
  expect(requests).toBe(operations * 4);
  expect(problems).toEqual([]);
}, 60_000);
