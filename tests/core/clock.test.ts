/**
 * Time and randomness are injected: only `src/core/clock.ts` reads `Date.now` (or `new Date()`) or `Math.random`
 * (grep-level check over the product code: `src/` and `plugins/`), and the fake clock fires timers
 * in order without waiting.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Glob } from "bun";
import { FakeClock, seededRandom, sleep, systemClock, systemRandom } from "../../src/core/clock.ts";

const root = resolve(import.meta.dir, "../..");

describe("no direct clock or randomness outside the clock module", () => {
  test("Date.now, new Date() and Math.random appear only in src/core/clock.ts", () => {
    const hits: string[] = [];
    let files = 0;
    for (const pattern of ["src/**/*.ts", "src/**/*.tsx", "plugins/**/*.ts"]) {
      for (const file of new Glob(pattern).scanSync({ cwd: root })) {
        files++;
        if (file === "src/core/clock.ts") continue;
        readFileSync(resolve(root, file), "utf8")
          .split("\n")
          .forEach((line, i) => {
            if (/\bDate\.now\b|\bMath\.random\b|new Date\(\)/.test(line))
              hits.push(`${file}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    expect(files).toBeGreaterThan(50);
    expect(hits).toEqual([]);
  });
});

describe("no direct timers outside the clock module", () => {
  // Files that may call the global setTimeout/setInterval (or Bun.sleep). Everything else waits on
  // the injected clock (`deps.time`, a `timers` parameter, `sleep(ms, timers)` from src/core/clock.ts),
  // so a test moves a FakeClock instead of sleeping. This list only shrinks.
  const ALLOWED: Record<string, string> = {
    "src/core/clock.ts": "the clock module: the system clock's timers",
    "src/runtime/bun/serve.ts":
      "runtime seam: the graceful stop's deadline, after the app stopped; the sweep of connections past the header deadline (a socket timer, no app clock)",
    "src/cli/main.ts": "process entry: the keep-alive interval while serving",
    "src/core/logging.ts":
      "the log's own timers (made before any gateway clock): at most 2 s for the last lines at exit, the 100 ms write-behind of access lines",
  };
  const PREFIXES: Record<string, string> = {
    "src/dashboard/web/": "browser code: runs in the operator's browser, not in the gateway",
  };
  const allowed = (file: string) =>
    file in ALLOWED || Object.keys(PREFIXES).some((prefix) => file.startsWith(prefix));
  test("setTimeout, setInterval and Bun.sleep appear only in the allowed files", () => {
    const hits: string[] = [];
    const used = new Set<string>();
    let files = 0;
    for (const pattern of ["src/**/*.ts", "src/**/*.tsx", "plugins/**/*.ts"]) {
      for (const file of new Glob(pattern).scanSync({ cwd: root })) {
        files++;
        readFileSync(resolve(root, file), "utf8")
          .split("\n")
          .forEach((line, i) => {
            const code = line.trim();
            if (code.startsWith("*") || code.startsWith("//") || code.startsWith("/*")) return;
            // A call of the global (not `clock.setTimeout(`, `this.timers.setTimeout(`).
            if (!/(?<![.\w#])set(?:Timeout|Interval)\s*\(|\bBun\.sleep\b/.test(code)) return;
            if (allowed(file)) used.add(file);
            else hits.push(`${file}:${i + 1}: ${code}`);
          });
      }
    }
    expect(files).toBeGreaterThan(50);
    expect(hits).toEqual([]);
    // An entry nothing needs any more is removed (the list only shrinks).
    expect(Object.keys(ALLOWED).filter((f) => !used.has(f))).toEqual([]);
  });
});

describe("ids from crypto.randomUUID", () => {
  // Ids made outside the injected Random: store keys, cluster holders and ids the client sees. A new
  // use on the request path takes `deps.random.uuid()` instead (src/proxy/models.ts does); this list
  // only shrinks.
  const KNOWN = new Set([
    "src/core/clock.ts",
    "src/import-python/apply.ts",
    "src/access/api-keys/reservations.ts",
    "src/access/api-keys/repository.ts",
    "src/accounts/claims.ts",
    "src/accounts/repository.ts",
    "src/cluster/stream-leases.ts",
    "src/cluster/leader.ts",
    "src/cluster/refresh-claims.ts",
    "src/cluster/attempts.ts",
    "src/proxy/chat/response.ts",
    "src/proxy/stream.ts",
    "src/proxy/ws/session.ts",
    "src/proxy/ws/accept.ts",
    "src/proxy/ws/shaper.ts",
  ]);
  test("crypto.randomUUID appears only in the known files (none new)", () => {
    const users: string[] = [];
    for (const pattern of ["src/**/*.ts", "src/**/*.tsx", "plugins/**/*.ts"]) {
      for (const file of new Glob(pattern).scanSync({ cwd: root })) {
        if (/\brandomUUID\b/.test(readFileSync(resolve(root, file), "utf8"))) users.push(file);
      }
    }
    expect(users.filter((f) => !KNOWN.has(f))).toEqual([]);
    expect(users).not.toContain("src/proxy/models.ts");
  });
});

describe("FakeClock", () => {
  test("advance fires due timers in order, each at its due time, and skips cleared ones", async () => {
    const clock = new FakeClock(1_000);
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(["b", clock.now()]), 200);
    clock.setTimeout(() => fired.push(["a", clock.now()]), 100);
    const c = clock.setTimeout(() => fired.push(["c", clock.now()]), 150);
    clock.clearTimeout(c);
    await clock.advance(150);
    expect(fired).toEqual([["a", 1_100]]);
    expect(clock.now()).toBe(1_150);
    await clock.advance(1_000);
    expect(fired).toEqual([
      ["a", 1_100],
      ["b", 1_200],
    ]);
    expect(clock.now()).toBe(2_150);
    expect(clock.pending).toBe(0);
  });

  test("a timer set by a firing timer (a loop) fires within the same advance when due", async () => {
    const clock = new FakeClock(0);
    const at: number[] = [];
    const loop = () => {
      at.push(clock.now());
      if (at.length < 5) clock.setTimeout(loop, 30);
    };
    clock.setTimeout(loop, 30);
    await clock.advance(100);
    expect(at).toEqual([30, 60, 90]);
    await clock.advance(100);
    expect(at).toEqual([30, 60, 90, 120, 150]);
  });

  test("sleep waits on the given timers: a fake clock's resolve when it has moved far enough", async () => {
    const clock = new FakeClock(0);
    let done = false;
    const slept = sleep(250, clock).then(() => {
      done = true;
    });
    await clock.advance(249);
    expect(done).toBe(false);
    await clock.advance(1);
    await slept;
    expect(done).toBe(true);
    expect(clock.pending).toBe(0);
  });

  test("work started by a timer settles before the next timer fires", async () => {
    const clock = new FakeClock(0);
    const log: string[] = [];
    clock.setTimeout(async () => {
      await Promise.resolve();
      log.push("first done");
    }, 10);
    clock.setTimeout(() => log.push("second"), 20);
    await clock.advance(20);
    expect(log).toEqual(["first done", "second"]);
  });
});

describe("random sources", () => {
  test("seededRandom repeats for a seed, stays in [0, 1), differs across seeds", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(43).next()).not.toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });

  test("uuid: a version 4 UUID; repeatable from a seed, from crypto.randomUUID in the system source", () => {
    const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const a = seededRandom(5);
    const ids = Array.from({ length: 100 }, () => a.uuid());
    expect(ids.every((id) => V4.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(100);
    const b = seededRandom(5);
    expect(Array.from({ length: 100 }, () => b.uuid())).toEqual(ids);
    expect(V4.test(systemRandom.uuid())).toBe(true);
    expect(systemRandom.uuid()).not.toBe(systemRandom.uuid());
  });

  test("the system clock reads the wall clock", () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now - before).toBeLessThan(1_000);
  });
});

describe("time-ordered request ids", () => {
  const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  test("version 7: the millisecond time first, version and variant bits set, sorted by time", () => {
    const r = seededRandom(7);
    const ms = 1_764_547_200_123;
    const id = r.timeOrderedId(ms as never);
    expect(V7.test(id)).toBe(true);
    expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
    const ids = Array.from({ length: 200 }, (_, i) => systemRandom.timeOrderedId((ms + i * 3) as never));
    expect(ids.every((x) => V7.test(x))).toBe(true);
    expect(ids.map((x) => Number.parseInt(x.slice(0, 8) + x.slice(9, 13), 16))).toEqual(
      ids.map((_, i) => ms + i * 3),
    );
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(200);
    // The same millisecond: still distinct (74 random bits).
    const same = Array.from({ length: 1000 }, () => systemRandom.timeOrderedId(ms as never));
    expect(new Set(same).size).toBe(1000);
  });
  test("seeded sources repeat their ids", () => {
    const a = seededRandom(3);
    const b = seededRandom(3);
    expect(a.timeOrderedId(5 as never)).toBe(b.timeOrderedId(5 as never));
    expect(a.timeOrderedId(0 as never).startsWith("00000000-0000-7")).toBe(true);
  });
});
