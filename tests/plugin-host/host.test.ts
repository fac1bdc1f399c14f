import { describe, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import type { GatewayServices, Plugin } from "../../src/plugin-host/api.ts";
import { HookBus } from "../../src/plugin-host/hooks.ts";
import { importPlugin, PluginHost, PluginLoadError } from "../../src/plugin-host/host.ts";
import { loadSettings } from "../../src/settings/load.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/plugins/${name}`, import.meta.url));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function host() {
  const bus = new HookBus(quiet);
  return {
    bus,
    host: new PluginHost({
      bus,
      services: {} as GatewayServices,
      settings: loadSettings({}),
      logFor: () => quiet,
    }),
  };
}

async function loadError(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PluginLoadError);
    return (e as Error).message;
  }
  throw new Error("expected a PluginLoadError");
}

describe("loading plugin modules", () => {
  test("a default-exported factory is called", async () => {
    const p = await importPlugin(fixture("factory.ts"), "/");
    expect(p.name).toBe("fixtures.factory");
  });
  test("relative paths resolve against the working directory", async () => {
    const p = await importPlugin(
      "tests/fixtures/plugins/factory.ts",
      fileURLToPath(new URL("../..", import.meta.url)),
    );
    expect(p.version).toBe("2.0.0");
  });
  const bad: [string, RegExp][] = [
    ["missing.ts", /cannot load plugin .*missing\.ts/],
    ["no-export.ts", /exports no plugin object/],
    ["bad-name.ts", /name must be lowercase and dot-namespaced, got "Bad Name!"/],
  ];
  for (const [file, why] of bad) {
    test(`${file} is refused at start-up`, async () => {
      expect(await loadError(() => importPlugin(fixture(file), "/"))).toMatch(why);
    });
  }
});

describe("setting plugins up", () => {
  const named = (name: string, setup: Plugin["setup"] = () => {}): { plugin: Plugin; source: string } => ({
    plugin: { name, setup },
    source: "test",
  });

  test("a duplicate name is refused", async () => {
    const { host: h } = host();
    expect(await loadError(() => h.setup([named("a.b"), named("a.b")]))).toMatch(/a\.b is registered twice/);
  });
  test("a setup that throws names the plugin", async () => {
    const { host: h } = host();
    const p = (await import(fixture("throws-in-setup.ts"))).default as Plugin;
    expect(await loadError(() => h.setup([{ plugin: p, source: "x" }]))).toBe(
      "plugin fixtures.throws: setup failed: cannot start: missing config",
    );
  });
  test("an unknown hook name is refused at registration", async () => {
    const { host: h } = host();
    const p = (await import(fixture("unknown-hook.ts"))).default as Plugin;
    expect(await loadError(() => h.setup([{ plugin: p, source: "x" }]))).toMatch(
      /unknown hook "refresh.fail"/,
    );
  });
  test("hooks and providers registered after setup are refused", async () => {
    const { host: h } = host();
    let saved: Parameters<Plugin["setup"]>[0] | undefined;
    await h.setup([
      named("late.registrar", (ctx) => {
        saved = ctx;
      }),
    ]);
    expect(() => saved!.on("refresh.failed", () => undefined)).toThrow(/only be registered during setup/);
    expect(() =>
      saved!.provide("leases", {
        acquire: async () => ({ accountId: "x", release() {} }),
        inFlight: () => 0,
      }),
    ).toThrow(/only be registered during setup/);
  });
  test("a provider can be registered once and is found by key", async () => {
    const { host: h } = host();
    const leases = { acquire: async () => ({ accountId: "x", release() {} }), inFlight: () => 3 };
    await h.setup([named("p.one", (ctx) => ctx.provide("leases", leases))]);
    expect(h.provider("leases").inFlight("any")).toBe(3);
    expect(() => h.provider("credentials")).toThrow("no plugin provides credentials");
    const { host: h2 } = host();
    expect(
      await loadError(() =>
        h2.setup([
          named("p.one", (ctx) => ctx.provide("leases", leases)),
          named("p.two", (ctx) => ctx.provide("leases", leases)),
        ]),
      ),
    ).toMatch(/leases is already provided by p\.one/);
  });
  test("start runs in order; stop in reverse, and one failing stop does not block the rest", async () => {
    const { host: h } = host();
    const seen: string[] = [];
    await h.setup([
      named("p.a", (ctx) => {
        ctx.onStart(() => void seen.push("start a"));
        ctx.onStop(() => void seen.push("stop a"));
      }),
      named("p.b", (ctx) => {
        ctx.onStart(() => void seen.push("start b"));
        ctx.onStop(() => {
          throw new Error("stop b failed");
        });
      }),
    ]);
    await h.start();
    await h.stop();
    expect(seen).toEqual(["start a", "start b", "stop a"]);
  });
});
