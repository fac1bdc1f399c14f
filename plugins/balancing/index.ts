/**
 * Balancing: picks an account for each request (`account.select` → `route.account`).
 * Its strategies arrive with the proxy and balancing issues.
 *
 * @module
 */
import { definePlugin } from "../../src/plugin-host/api.ts";

export default definePlugin({
  name: "codex-lb.balancing",
  version: "0.1.0",
  setup() {},
});
