/** The conformance suite run against every built-in plugin and the example plugin. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { builtinPlugins } from "../../plugins/index.ts";
import { describeConformance } from "./suite.ts";

const pluginsDir = join(import.meta.dir, "../../plugins");
const folders: Record<string, string> = {
  "codex-lb.firewall": "firewall",
  "codex-lb.auth-refresh": "auth-refresh",
  "codex-lb.upstream-failover": "upstream-failover",
  "codex-lb.balancing": "balancing",
};

for (const plugin of builtinPlugins) {
  describeConformance(plugin.name, () => plugin, { dir: join(pluginsDir, folders[plugin.name]!) });
}

describeConformance(
  "examples.custom-refresh-codes",
  () => import("../../plugins/examples/custom-refresh-codes/index.ts"),
  { dir: join(pluginsDir, "examples/custom-refresh-codes") },
);

test("docs/plugins.md shows the example plugin exactly as the suite above tests it", () => {
  const doc = readFileSync(join(import.meta.dir, "../../docs/plugins.md"), "utf8");
  const block = /## The example[^\n]*\n\n```ts\n([\s\S]*?)```/.exec(doc)?.[1];
  const file = readFileSync(join(pluginsDir, "examples/custom-refresh-codes/index.ts"), "utf8");
  const code = file
    .slice(file.indexOf("\nimport type") + 1)
    .replace('"../../../src/plugin-api.ts"', '"codex-lb"');
  expect(block).toBe(code);
  expect(code.trim().split("\n").length).toBeLessThanOrEqual(40);
});
