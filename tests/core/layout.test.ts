/**
 * Layout: `src/app/` is the composition root and nothing imports back up into it. The shared kernel
 * (`AppDeps`, logging, per-request facts, errors, clock) lives in `src/core/`; the one importer of
 * `src/app/` outside it is the process entry `src/cli/boot.ts`, which starts the gateway
 * (`createGateway` in `src/app/app.ts`). `bun run lint` enforces the same rule (biome's
 * `noRestrictedImports` override on `src/**`); this is the grep-level check over every file.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Glob } from "bun";

const root = resolve(import.meta.dir, "../..");
const appDir = join(root, "src/app");
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;
/** The process entry starts the composition root; nothing else under src/ may import it. */
const ENTRY = new Map([["src/cli/boot.ts", ["src/app/app.ts"]]]);

describe("layout: nothing imports back up into the composition root", () => {
  test("no file under src/ outside src/app/ imports from src/app/ (only the entry starts it)", () => {
    const bad: string[] = [];
    const entry: string[] = [];
    let files = 0;
    for (const pattern of ["src/**/*.ts", "src/**/*.tsx"]) {
      for (const file of new Glob(pattern).scanSync({ cwd: root })) {
        if (file.startsWith("src/app/")) continue;
        files++;
        const abs = join(root, file);
        for (const m of readFileSync(abs, "utf8").matchAll(IMPORT)) {
          const spec = (m[1] ?? m[2])!;
          if (!spec.startsWith(".")) continue;
          const target = relative(appDir, resolve(dirname(abs), spec));
          if (target.startsWith("..")) continue;
          const to = `src/app/${target}`;
          if (ENTRY.get(file)?.includes(to)) entry.push(`${file} -> ${to}`);
          else bad.push(`${file}: ${spec}`);
        }
      }
    }
    expect(files).toBeGreaterThan(50);
    expect(bad).toEqual([]);
    expect(entry).toEqual(["src/cli/boot.ts -> src/app/app.ts"]);
  });

  test("AppDeps is a kernel type in src/core/, with no copy or re-export left in src/app/", () => {
    expect(readFileSync(join(root, "src/core/deps.ts"), "utf8")).toContain("export interface AppDeps");
    const inApp = [...new Glob("src/app/**/*.ts").scanSync({ cwd: root })].filter((f) =>
      /export\s+(type\s+)?\{[^}]*\bAppDeps\b|export\s+interface\s+AppDeps/.test(
        readFileSync(join(root, f), "utf8"),
      ),
    );
    expect(inApp).toEqual([]);
  });
});
