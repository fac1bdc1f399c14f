/**
 * Example operator plugin: treats extra refresh error codes as permanent. Load it with
 * `CODEX_LB_PLUGINS=plugins/examples/custom-refresh-codes/index.ts` (the compiled binary loads it
 * from disk too). It only uses `import type`, so it needs nothing from this repository at run time.
 * It is the example of docs/plugins.md and runs in the conformance suite (tests/plugin-conformance).
 *
 * @module
 */
import type { Plugin } from "../../../src/plugin-api.ts";

const plugin: Plugin = {
  name: "examples.custom-refresh-codes",
  version: "1.0.0",
  // CODEX_LB_PLUGIN_EXAMPLES_CUSTOM_REFRESH_CODES_DEAD_CODES=acme_banned,acme_closed
  settings: (t) =>
    t.Object({
      deadCodes: t.Array(t.String({ minLength: 1 }), { default: ["acme_account_banned"], csv: true }),
    }),
  setup(ctx) {
    const codes = new Set(ctx.config.deadCodes as string[]);
    // Runs before the built-in classification (order -10) and stops the chain when it decides.
    ctx.on(
      "refresh.failed",
      (e) =>
        e.errorCode && codes.has(e.errorCode)
          ? {
              actions: [
                {
                  type: "account.deactivate",
                  accountId: e.account.id,
                  status: "deactivated",
                  reason: `Refresh failed with ${e.errorCode} (custom rule)`,
                },
              ],
              stop: true,
            }
          : undefined,
      { order: -10 },
    );
    ctx.http.get("/api/examples/custom-refresh-codes", () => ({ codes: [...codes] }));
  },
};

export default plugin;
