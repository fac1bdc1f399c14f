/**
 * Builds `dist/codex-lb`: one executable with the runtime, the code, the migrations, the built-in
 * plugins and the browser UI (the dashboard, an HTML import, and Swagger UI's files) inside. Extra
 * plugins are still loaded from disk at start-up. Prints the dashboard bundle's size.
 */
import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { gzipSync } from "node:zlib";

const outfile = process.argv[2] ?? "dist/codex-lb";
// Only the directory the output goes into (not the repo's dist/ when it goes elsewhere).
mkdirSync(dirname(outfile), { recursive: true });
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
console.log(`built ${outfile} (${(statSync(outfile).size / 1e6).toFixed(1)} MB)`);

// The dashboard as the binary embeds it (the compile step bundles the HTML import the same way).
const ui = await Bun.build({
  entrypoints: ["src/dashboard/web/index.html"],
  target: "browser",
  minify: true,
});
if (!ui.success) {
  for (const log of ui.logs) console.error(log);
  process.exit(1);
}
let raw = 0;
let gz = 0;
for (const o of ui.outputs) {
  const bytes = new Uint8Array(await o.arrayBuffer());
  const z = gzipSync(bytes).byteLength;
  raw += bytes.byteLength;
  gz += z;
  console.log(
    `  dashboard ${o.path.replace(/^\.\//, "")}: ${(bytes.byteLength / 1024).toFixed(1)} kB (gzip ${(z / 1024).toFixed(1)} kB)`,
  );
}
console.log(`dashboard bundle: ${(raw / 1024).toFixed(1)} kB (gzip ${(gz / 1024).toFixed(1)} kB)`);
