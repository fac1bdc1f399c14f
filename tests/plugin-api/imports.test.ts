/**
 * Plugins import only the public plugin API (`src/plugin-api.ts`) and their own files. Two checks:
 * every import under `plugins/` today, and the lint rule itself (biome's `noRestrictedImports` on
 * `plugins/**`) run on a scratch copy of the configuration with one bad and one good plugin file.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { Glob } from "bun";

const root = resolve(import.meta.dir, "../..");
const api = join(root, "src/plugin-api.ts");
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;

function importsOf(text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2])!);
}

describe("plugins import only the public API", () => {
  test("every import under plugins/ is the API or a file of the same plugin", () => {
    const bad: string[] = [];
    let files = 0;
    for (const file of new Glob("plugins/**/*.ts").scanSync({ cwd: root })) {
      files++;
      const abs = join(root, file);
      // The plugin's own folder: plugins/<name>/ (plugins/examples/<name>/ for examples);
      // plugins/index.ts (the list of built-ins) may import each plugin's entry.
      const parts = file.split("/");
      const own = parts[1] === "examples" ? parts.slice(0, 3).join("/") : parts.slice(0, 2).join("/");
      const ownDir = file === "plugins/index.ts" ? join(root, "plugins") : join(root, own);
      for (const spec of importsOf(readFileSync(abs, "utf8"))) {
        if (spec === "codex-lb") continue;
        const target = spec.startsWith(".") ? resolve(dirname(abs), spec) : null;
        if (target === api) continue;
        if (target && !relative(ownDir, target).startsWith("..")) continue;
        bad.push(`${file}: ${spec}`);
      }
    }
    expect(files).toBeGreaterThan(10);
    expect(bad).toEqual([]);
  });

  test("bun run lint refuses an import past the API from a plugin, and accepts the API", () => {
    const dir = mkdtempSync(join(tmpdir(), "plugin-lint-"));
    try {
      const config = JSON.parse(readFileSync(join(root, "biome.json"), "utf8"));
      delete config.$schema;
      delete config.vcs;
      writeFileSync(join(dir, "biome.json"), JSON.stringify(config));
      mkdirSync(join(dir, "plugins/acme"), { recursive: true });
      mkdirSync(join(dir, "src"), { recursive: true });
      writeFileSync(
        join(dir, "plugins/acme/bad.ts"),
        'import { GatewayError } from "../../src/core/errors.ts";\nimport { x } from "../other/table.ts";\n\nexport const a = [GatewayError, x];\n',
      );
      writeFileSync(
        join(dir, "plugins/acme/good.ts"),
        'import { GatewayError } from "../../src/plugin-api.ts";\nimport { y } from "./own.ts";\n\nexport const b = [GatewayError, y];\n',
      );
      const run = Bun.spawnSync([join(root, "node_modules/.bin/biome"), "lint", "plugins"], {
        cwd: dir,
        stdout: "pipe",
        stderr: "pipe",
      });
      const out = run.stdout.toString() + run.stderr.toString();
      expect(run.exitCode).not.toBe(0);
      expect(out).toContain("noRestrictedImports");
      expect(out).toContain("plugins/acme/bad.ts:1");
      expect(out).toContain("plugins/acme/bad.ts:2");
      expect(out).not.toContain("good.ts");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
