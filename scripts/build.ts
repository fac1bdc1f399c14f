/**
 * Builds `dist/codex-lb`: one executable with the runtime, the code, the migrations and the
 * built-in plugins inside. Extra plugins are still loaded from disk at start-up.
 */
import { mkdirSync } from "node:fs";

const outfile = process.argv[2] ?? "dist/codex-lb";
mkdirSync("dist", { recursive: true });
const result = await Bun.build({
  entrypoints: ["src/cli/main.ts"],
  // No .env.local / .env.production magic: the binary reads only what codex-lb's loader reads
  // (the environment and ./.env), and no bunfig.toml from the working directory.
  compile: { outfile, autoloadDotenv: false, autoloadBunfig: false },
  // Identifiers stay readable so stack traces in the logs still name functions.
  minify: { whitespace: true, syntax: true, identifiers: false },
  target: "bun",
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
