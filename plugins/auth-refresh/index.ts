/**
 * Auth refresh: keeps every account's OAuth tokens fresh and classifies refresh failures
 * (`refresh.failed` → `account.deactivate`). Its behaviour arrives with the accounts issue.
 *
 * @module
 */
import { definePlugin } from "../../src/plugin-host/api.ts";

export default definePlugin({
  name: "codex-lb.auth-refresh",
  version: "0.1.0",
  setup() {},
});
