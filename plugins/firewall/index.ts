/**
 * Firewall: admits or refuses proxy requests by client address (`request.admit` → `request.reject`).
 * Its rules arrive with the access-control issue.
 *
 * @module
 */
import { definePlugin } from "../../src/plugin-host/api.ts";

export default definePlugin({
  name: "codex-lb.firewall",
  version: "0.1.0",
  setup() {},
});
