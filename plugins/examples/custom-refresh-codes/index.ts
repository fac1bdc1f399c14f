/**
 * Example operator plugin: treats extra refresh error codes as permanent. Load it with
 * `CODEX_LB_PLUGINS=plugins/examples/custom-refresh-codes/index.ts` (the compiled binary loads it
 * from disk too). It only uses `import type`, so it needs nothing from this repository at run time.
 *
 * The codes come from `CUSTOM_DEAD_CODES` (comma-separated), default `acme_account_banned`.
 * Its handler runs before the built-in one (`order: -10`) and stops the chain when it decides,
 * so it can also override a built-in classification.
 *
 * @module
 */
import type { Plugin } from "../../../src/plugin-api.ts";

const codes = new Set(
  (process.env.CUSTOM_DEAD_CODES ?? "acme_account_banned")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean),
);

const plugin: Plugin = {
  name: "examples.custom-refresh-codes",
  version: "1.0.0",
  setup(ctx) {
    ctx.on(
      "refresh.failed",
      (event) => {
        if (!event.errorCode || !codes.has(event.errorCode)) return undefined;
        return {
          actions: [
            {
              type: "account.deactivate",
              accountId: event.account.id,
              status: "deactivated",
              reason: `Refresh failed with ${event.errorCode} (custom rule)`,
            },
          ],
          stop: true,
        };
      },
      { order: -10 },
    );
    ctx.http.get("/api/examples/custom-refresh-codes", () => ({ codes: [...codes] }));
  },
};

export default plugin;
