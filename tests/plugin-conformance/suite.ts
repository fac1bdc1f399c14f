/**
 * The plugin conformance suite: what every codex-lb plugin, built-in or an operator's, must hold.
 * Run it on your plugin from a test file of your own:
 *
 * ```ts
 * import { describeConformance } from "codex-lb/tests/plugin-conformance/suite.ts";
 * describeConformance("acme.custom-codes", () => import("./index.ts"), { dir: import.meta.dir });
 * ```
 *
 * It sets the plugin up alone (its own hook bus and host) against a real gateway's read services, on
 * a fake clock, with every write recorded instead of applied, then checks:
 * 1. the manifest: name, settings schema (defaults load), declared services are known ones;
 * 2. its files import only the public plugin API (and its own files);
 * 3. setup registers only known hooks and provides what it declares; no global timers, ever;
 * 4. every handler, on sample events of its hook: does not throw, returns only valid actions, and
 *    only the kinds that mean something on that hook (`request.reject` on admission and selection,
 *    `route.account` and `sticky.*` on selection, `request.failover` on `upstream.failed`; never
 *    `tokens.save`, which only the credentials provider may apply, outside a hook);
 * 5. decisions are pure: the same event twice gives the same actions, and the store is unchanged;
 * 6. start and stop run, and stop leaves no timer of the plugin behind.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { FakeClock, seededRandom } from "../../src/core/clock.ts";
import type {
  AccountSnapshot,
  Action,
  FireOutcome,
  GatewayServices,
  HookEvents,
  HookName,
  Plugin,
} from "../../src/plugin-api.ts";
import { validateAction } from "../../src/plugin-host/actions.ts";
import { HookBus, hookNames } from "../../src/plugin-host/hooks.ts";
import { PluginHost } from "../../src/plugin-host/host.ts";
import { loadPluginSettings, settingsSchemaOf } from "../../src/plugin-host/settings.ts";
import { seedAccount } from "../support/accounts.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const NAME = /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$/;
const KNOWN_SERVICES = ["credentials", "leases"];
const apiFile = resolve(import.meta.dir, "../../src/plugin-api.ts");

/** Which action kinds a handler of each hook may return. */
const allowed: Record<HookName, (a: Action) => boolean> = {
  "request.admit": (a) => a.type === "request.reject",
  "account.select": (a) =>
    a.type === "route.account" || a.type === "request.reject" || a.type.startsWith("sticky."),
  "upstream.failed": (a) => a.type.startsWith("account.") || a.type === "request.failover",
  "request.completed": (a) => a.type.startsWith("account.") || a.type.startsWith("sticky."),
  "refresh.failed": (a) => a.type.startsWith("account."),
  "usage.fetched": (a) => a.type.startsWith("account."),
  "usage.failed": (a) => a.type.startsWith("account."),
};

const failure = (httpStatus: number | null, errorCode: string | null, message: string | null = null) => ({
  httpStatus,
  errorCode,
  errorType: null,
  message,
  transport: httpStatus === null,
});

/** Sample events of each hook, built fresh on every call (handlers may not keep them). */
function samples(accounts: readonly AccountSnapshot[], now: number): { [H in HookName]: HookEvents[H][] } {
  const a = accounts[0]!;
  const headers = () => new Headers({ "session-id": "conformance-session", "user-agent": "conformance" });
  const failures = [
    failure(429, "rate_limit_exceeded", "Please try again in 20s"),
    failure(500, "server_error"),
    failure(401, "token_expired"),
    failure(400, "invalid_value", "bad parameter"),
    failure(null, "transport_error", "connection reset"),
    failure(403, "acme_account_banned"),
  ];
  const window = (usedPercent: number) => ({ usedPercent, windowMinutes: 300, resetAt: now + 3_600_000 });
  return {
    "request.admit": [
      {
        requestId: "conf-admit",
        method: "POST",
        path: "/v1/responses",
        headers: headers(),
        peerIp: "127.0.0.1",
        clientIp: "127.0.0.1",
        surface: "proxy",
        now,
      },
      {
        requestId: "conf-admit-2",
        method: "GET",
        path: "/api/accounts",
        headers: headers(),
        peerIp: "10.1.2.3",
        clientIp: null,
        surface: "admin",
        now,
      },
    ],
    "account.select": [
      {
        requestId: "conf-select",
        model: "gpt-5.4",
        candidates: accounts,
        all: accounts,
        excluded: [],
        headers: headers(),
        body: { promptCacheKey: "conformance-cache", previousResponseId: null },
        now,
        random: seededRandom(7).next,
      },
      {
        requestId: "conf-select-2",
        model: null,
        candidates: accounts.slice(1),
        all: accounts,
        excluded: [a.id],
        headers: new Headers(),
        body: {},
        now,
        random: seededRandom(8).next,
      },
    ],
    "upstream.failed": failures.map((f, i) => ({
      ...f,
      requestId: `conf-failed-${i}`,
      account: a,
      phase: f.transport ? ("transport" as const) : ("http" as const),
      resetsAt: null,
      resetsInSeconds: null,
      now,
    })),
    "request.completed": [
      { requestId: "conf-done", account: a, ok: true, httpStatus: 200, now },
      { requestId: "conf-done-2", account: null, ok: false, httpStatus: 503, now },
    ],
    "refresh.failed": failures.map((f) => ({ ...f, account: a, trigger: "request" as const, now })),
    "usage.fetched": [
      { account: a, primary: window(100), secondary: window(10), credits: null, now },
      { account: a, primary: window(20), secondary: null, now },
    ],
    "usage.failed": [failure(402, null, "Payment required"), failure(403, null)].map((f) => ({
      ...f,
      account: a,
      now,
    })),
  };
}

/** Every relative import of the `.ts` files under `dir` resolves to the API or inside `dir`. */
function foreignImports(dir: string): string[] {
  const bad: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".ts")) {
        const text = readFileSync(path, "utf8");
        for (const m of text.matchAll(
          /(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g,
        )) {
          const spec = (m[1] ?? m[2])!;
          if (spec === "codex-lb") continue;
          const target = spec.startsWith(".") ? resolve(dirname(path), spec) : null;
          if (target === apiFile) continue;
          if (target && !relative(dir, target).startsWith("..")) continue;
          bad.push(`${relative(dir, path)}: ${spec}`);
        }
      }
    }
  };
  walk(dir);
  return bad;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Rows of the tables plugins must never write behind the core's back. */
async function storeState(gw: TestGateway): Promise<string> {
  const db = gw.running.store.db;
  const [accounts, sticky, usage, events] = await Promise.all([
    db.selectFrom("accounts").select(["id", "version", "status"]).orderBy("id").execute(),
    db.selectFrom("sticky_sessions").select(["key", "account_id"]).orderBy("key").execute(),
    db
      .selectFrom("usage_snapshots")
      .select((eb) => eb.fn.countAll().as("n"))
      .execute(),
    db
      .selectFrom("account_events")
      .select((eb) => eb.fn.countAll().as("n"))
      .execute(),
  ]);
  return JSON.stringify({ accounts, sticky, usage, events });
}

export interface ConformanceOptions {
  /** The plugin's folder: its files are checked to import only the public API. */
  readonly dir?: string;
}

/** Registers the conformance tests of one plugin (a `describe` block). */
export function describeConformance(
  label: string,
  load: () => Promise<Plugin | { default: Plugin }> | Plugin,
  opts: ConformanceOptions = {},
): void {
  describe(`plugin conformance: ${label}`, () => {
    let plugin: Plugin;
    let gw: TestGateway;
    let clock: FakeClock;
    let bus: HookBus;
    let host: PluginHost;
    let accounts: readonly AccountSnapshot[];
    const recorded: { via: string; actions?: readonly Action[]; hook?: string }[] = [];
    const globalTimers: string[] = [];

    /** Runs `fn` with the global timer functions replaced by ones that record the call. */
    async function noGlobalTimers<T>(fn: () => Promise<T> | T): Promise<T> {
      const saved = { setTimeout: globalThis.setTimeout, setInterval: globalThis.setInterval };
      const spy =
        (kind: string, real: (...args: never[]) => unknown) =>
        (...args: unknown[]) => {
          globalTimers.push(`${kind}(${String(args[1] ?? 0)} ms)`);
          return (real as (...a: unknown[]) => unknown)(...args);
        };
      globalThis.setTimeout = spy("setTimeout", saved.setTimeout) as unknown as typeof setTimeout;
      globalThis.setInterval = spy("setInterval", saved.setInterval) as unknown as typeof setInterval;
      try {
        return await fn();
      } finally {
        globalThis.setTimeout = saved.setTimeout;
        globalThis.setInterval = saved.setInterval;
      }
    }

    beforeAll(async () => {
      const mod = await load();
      plugin = "default" in mod && typeof mod.default === "object" ? mod.default : (mod as Plugin);
      gw = await startGateway();
      const db = gw.running.store.db;
      for (const id of ["conf-a", "conf-b", "conf-c"]) await seedAccount(db, { id });
      const real = gw.running.gateway.services;
      accounts = await real.accounts.list();
      clock = new FakeClock(real.now());
      const provides = new Set<string>(plugin.provides ?? []);
      const services: GatewayServices = {
        ...real,
        now: () => clock.now(),
        timers: clock,
        random: seededRandom(1).next,
        apply: async (actions, o) => {
          recorded.push({ via: `apply(${o.source})`, actions });
          return actions.map((a) => ({ action: a, status: validateAction(a) ? "invalid" : "noop" }));
        },
        fire: async (hook): Promise<FireOutcome> => {
          recorded.push({ via: "fire", hook });
          return { actions: [], attribution: [], results: [], failed: false, applied: [] };
        },
        accounts: {
          ...real.accounts,
          credentials: (id, o) =>
            provides.has("credentials")
              ? real.accounts.credentials(id, o)
              : Promise.reject(new Error("decrypted tokens are for the credentials provider only")),
        },
      };
      bus = new HookBus(quiet);
      host = new PluginHost({ bus, services, settings: gw.running.gateway.settings, logFor: () => quiet });
    });

    afterAll(async () => {
      await gw?.stop();
    });

    test("manifest: name, settings with working defaults, known services", () => {
      expect(plugin.name).toMatch(NAME);
      expect(typeof plugin.setup).toBe("function");
      if (plugin.version !== undefined) expect(typeof plugin.version).toBe("string");
      if (plugin.settings !== undefined) {
        expect(settingsSchemaOf(plugin)?.type).toBe("object");
        expect(Object.isFrozen(loadPluginSettings(plugin, {}))).toBe(true);
      }
      for (const key of [...(plugin.provides ?? []), ...(plugin.requires ?? [])])
        expect(KNOWN_SERVICES).toContain(key);
    });

    if (opts.dir) {
      const dir = opts.dir;
      test("its files import only the public plugin API and their own files", () => {
        expect(foreignImports(dir)).toEqual([]);
      });
    }

    test("setup registers known hooks, provides what it declares, and uses no global timer", async () => {
      await noGlobalTimers(() => host.setup([{ plugin, source: "conformance" }]));
      const hooks = hookNames.filter((h) => bus.handlersOf(h).includes(plugin.name));
      for (const h of hooks) expect(hookNames).toContain(h);
      for (const key of plugin.provides ?? []) expect(host.providerOf(key)).toBe(plugin.name);
      expect(globalTimers).toEqual([]);
    });

    test("every handler decides: no throw, valid actions of the kinds its hook allows, no tokens", async () => {
      const events = samples(accounts, clock.now());
      let ran = 0;
      for (const hook of hookNames) {
        if (!bus.handlersOf(hook).includes(plugin.name)) continue;
        for (const event of events[hook]) {
          const out = await noGlobalTimers(() => bus.run(hook, event as never));
          ran++;
          expect(out.results.filter((r) => r.status !== "ok")).toEqual([]);
          for (const a of out.actions) {
            expect(validateAction(a)).toBeNull();
            expect({ hook, action: a.type, allowed: allowed[hook](a) }).toEqual({
              hook,
              action: a.type,
              allowed: true,
            });
          }
        }
      }
      const hooks = hookNames.filter((h) => bus.handlersOf(h).includes(plugin.name));
      if (hooks.length > 0) expect(ran).toBeGreaterThan(0);
      for (const r of recorded) for (const a of r.actions ?? []) expect(validateAction(a)).toBeNull();
      expect(globalTimers).toEqual([]);
    });

    test("decisions are pure: the same event twice gives the same actions, and the store is unchanged", async () => {
      const before = await storeState(gw);
      for (const hook of hookNames) {
        if (!bus.handlersOf(hook).includes(plugin.name)) continue;
        const first = samples(accounts, clock.now())[hook];
        for (let i = 0; i < first.length; i++) {
          const a = await bus.run(hook, first[i] as never);
          // Four more runs on fresh copies of the event: a coin flip inside would show.
          for (let run = 0; run < 4; run++) {
            const again = samples(accounts, clock.now())[hook][i];
            expect((await bus.run(hook, again as never)).actions).toEqual(a.actions);
          }
        }
      }
      expect(await storeState(gw)).toBe(before);
    });

    test("start and stop run; stop leaves no timer of the plugin behind", async () => {
      const pending = clock.pending;
      await noGlobalTimers(() => host.start());
      await noGlobalTimers(() => host.stop());
      expect(clock.pending).toBe(pending);
      expect(globalTimers).toEqual([]);
    });
  });
}
