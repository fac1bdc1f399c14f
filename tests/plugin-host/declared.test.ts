/**
 * Plugins declare their settings (read from `CODEX_LB_PLUGIN_<NAME>_*`) and the services they
 * provide and require; the gateway refuses at start-up a bad setting, an undeclared plugin variable,
 * a missing provider or a service provided twice, with one line on stderr and exit code 2.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtinPlugins } from "../../plugins/index.ts";
import { checkPlugins, pluginEnvName } from "../../src/plugin-host/settings.ts";
import { startGateway } from "../support/gateway.ts";
import { codexLbCommand } from "../support/process.ts";

const fixture = (name: string) => join(import.meta.dir, "../fixtures/plugins", name);
const example = join(import.meta.dir, "../../plugins/examples/custom-refresh-codes/index.ts");

/** Runs `codex-lb serve` in an empty directory; it must fail before listening. */
async function serveFails(env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "codex-lb-declared-"));
  try {
    const proc = Bun.spawn([...codexLbCommand(), "serve"], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: dir,
        CODEX_LB_PORT: "0",
        CODEX_LB_DATA_DIR: join(dir, "data"),
        ...env,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill(), 15_000);
    const code = await proc.exited;
    clearTimeout(timer);
    const stderr = await new Response(proc.stderr).text();
    return { code, stderr, lines: stderr.trim().split("\n") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("declared settings", () => {
  test("env names: CODEX_LB_PLUGIN_<NAME>_<FIELD> in upper snake case", () => {
    expect(pluginEnvName("examples.custom-refresh-codes", "deadCodes")).toBe(
      "CODEX_LB_PLUGIN_EXAMPLES_CUSTOM_REFRESH_CODES_DEAD_CODES",
    );
  });

  test("the example plugin reads its codes from its own setting", async () => {
    const gw = await startGateway({
      env: {
        CODEX_LB_PLUGINS: example,
        CODEX_LB_PLUGIN_EXAMPLES_CUSTOM_REFRESH_CODES_DEAD_CODES: "acme_banned, acme_closed",
      },
    });
    try {
      const res = await fetch(`${gw.url}/api/examples/custom-refresh-codes`);
      expect(await res.json()).toEqual({ codes: ["acme_banned", "acme_closed"] });
    } finally {
      await gw.stop();
    }
  });

  test("defaults fill what is not set; the values are converted and frozen", async () => {
    const { default: declares } = await import(fixture("declares.ts"));
    const configs = checkPlugins([...builtinPlugins, declares], {
      CODEX_LB_PLUGIN_FIXTURES_DECLARES_MAX_WIDGETS: "7",
    });
    const config = configs.get("fixtures.declares")!;
    expect(config).toEqual({ maxWidgets: 7, label: "w" });
    expect(Object.isFrozen(config)).toBe(true);
  });
});

describe("refused at start-up: one line, exit 2", () => {
  test("a bad value names the variable", async () => {
    const r = await serveFails({
      CODEX_LB_PLUGINS: fixture("declares.ts"),
      CODEX_LB_PLUGIN_FIXTURES_DECLARES_MAX_WIDGETS: "many",
    });
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.stderr).toContain("CODEX_LB_PLUGIN_FIXTURES_DECLARES_MAX_WIDGETS");
  });

  test("a plugin variable no loaded plugin declares", async () => {
    const r = await serveFails({ CODEX_LB_PLUGIN_NOBODY_KNOB: "1" });
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.stderr).toContain("CODEX_LB_PLUGIN_NOBODY_KNOB");
  });

  test("a required service nobody provides", async () => {
    const r = await serveFails({ CODEX_LB_PLUGINS: fixture("requires-missing.ts") });
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.stderr).toContain("plugin fixtures.requires-missing requires metrics-sink");
  });

  test("a service provided twice", async () => {
    const r = await serveFails({ CODEX_LB_PLUGINS: fixture("second-leases.ts") });
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.stderr).toContain("leases is already provided by codex-lb.balancing");
  });

  test("a duplicate plugin", async () => {
    const r = await serveFails({ CODEX_LB_PLUGINS: `${example},${example}` });
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.stderr).toContain("examples.custom-refresh-codes is registered twice");
  });

  test("the core's own needs: without the plugins that provide credentials and leases nothing starts", () => {
    expect(() => checkPlugins([], {}, ["credentials", "leases"])).toThrow(
      "the gateway requires credentials, and no loaded plugin provides it",
    );
  });
});
