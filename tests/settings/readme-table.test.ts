import { expect, test } from "bun:test";
import { configTable } from "../../src/cli/config-table.ts";

test("the README's configuration table is the one generated from the settings schema", async () => {
  const readme = await Bun.file(new URL("../../README.md", import.meta.url)).text();
  // Regenerate with: bun run src/cli/main.ts config --defaults
  expect(readme).toContain(configTable());
});
