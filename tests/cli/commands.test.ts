/**
 * The command line as an operator meets it: help that never runs a command, unknown flags refused
 * with exit 2, JSON listings, flag overrides, start-up errors that name the cause, completions.
 * Runs the source entry, or the compiled binary when CODEX_LB_BIN is set (.ci/run does both).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "../../src/cli/args.ts";
import { root } from "../../src/cli/main.ts";
import { codexLbCommand, spawnServe } from "../support/process.ts";

// Each test spawns the command (or the binary) several times; the machine is shared.
setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "codex-lb-cmds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[], env: Record<string, string> = {}, cwd = dir) {
  const proc = Bun.spawn([...codexLbCommand(), ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: dir, CODEX_LB_LOG_LEVEL: "silent", ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { out, err, code };
}

/** Every command path of the table: [], ["serve"], ["accounts"], ["accounts", "list"], ... */
function paths(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return [{ path, cmd }, ...(cmd.subcommands ?? []).flatMap((c) => paths(c, [...path, c.name]))];
}
const all = paths(root);

/** Runs in small batches: the machine is shared. */
async function each<T>(items: readonly T[], fn: (t: T) => Promise<void>, width = 4) {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

describe("help never runs a command", () => {
  test("`<command> --help` and `-h` print that command's help, exit 0 and touch nothing", async () => {
    expect(all.length).toBeGreaterThan(15);
    await each(all, async ({ path, cmd }) => {
      const dataDir = join(dir, `help-${path.join("-") || "root"}`);
      // Required arguments are given so that, were the command run, it would do something.
      const args = (cmd.args ?? []).map((a) => (a.name === "FILE" ? join(dataDir, "x.db") : "x"));
      const env = { CODEX_LB_DATA_DIR: dataDir, CODEX_LB_PORT: "0" };
      for (const flag of ["--help", "-h"]) {
        const r = await run([...path, ...args, flag], env);
        expect({ path, code: r.code }).toEqual({ path, code: 0 });
        expect(r.out).toContain(`Usage: ${["codex-lb", ...path].join(" ")}`);
        expect(r.out).toStartWith(cmd.summary);
        expect(r.err).toBe("");
      }
      expect(existsSync(dataDir)).toBe(false);
    });
  }, 120_000);

  test("help of a command names its flags; `help X` is `X --help`; a bad setting does not stop help", async () => {
    const r = await run(["serve", "--help"], { CODEX_LB_PORT: "abc" });
    expect(r.code).toBe(0);
    for (const f of ["--host HOST", "--port PORT", "--data-dir DIR"]) expect(r.out).toContain(f);
    const viaHelp = await run(["help", "accounts", "list"]);
    expect(viaHelp.out).toBe((await run(["accounts", "list", "--help"])).out);
    // `--` ends the flags: a --help after it is an argument, not a help request.
    const after = await run(["keys", "create", "--", "--help"], { CODEX_LB_DATA_DIR: join(dir, "dd") });
    expect(after.code).toBe(0);
    expect(after.out).toContain("created key");
  });
});

describe("unknown flags and bad usage exit 2 and touch nothing", () => {
  test("an unknown flag on every runnable command", async () => {
    const runnable = all.filter((x) => x.cmd.run);
    await each(runnable, async ({ path, cmd }) => {
      const dataDir = join(dir, `flag-${path.join("-")}`);
      const args = (cmd.args ?? []).map(() => "x");
      const r = await run([...path, ...args, "--no-such-flag"], { CODEX_LB_DATA_DIR: dataDir });
      expect({ path, code: r.code }).toEqual({ path, code: 2 });
      expect(r.err).toContain("unknown flag --no-such-flag");
      expect(r.err).toContain(`usage: ${["codex-lb", ...path].join(" ")}`);
      expect(existsSync(dataDir)).toBe(false);
    });
  }, 120_000);

  test("missing and extra arguments, unknown commands, a group without its command", async () => {
    const env = { CODEX_LB_DATA_DIR: join(dir, "usage") };
    const cases: [string[], string][] = [
      [["accounts", "import"], "missing FILE"],
      [["accounts", "pause", "a", "b"], 'unexpected argument "b"'],
      [["keys", "frob"], 'unknown command "frob"'],
      [["frobnicate"], 'unknown command "frobnicate"'],
      [["accounts"], "a command is needed"],
      [["serve", "--port"], "--port needs a value"],
      [["accounts", "list", "--json=yes"], "--json takes no value"],
      [["completions", "tcsh"], 'unknown shell "tcsh"'],
    ];
    for (const [args, msg] of cases) {
      const r = await run(args, env);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toContain(msg);
    }
    expect(existsSync(env.CODEX_LB_DATA_DIR)).toBe(false);
  });
});

describe("serve flags and start-up errors", () => {
  test("--port and --data-dir override the environment (even an invalid value there)", async () => {
    const dataDir = join(dir, "serve-flags");
    const child = await spawnServe(
      { CODEX_LB_PORT: "abc", CODEX_LB_DATA_DIR: "/nonexistent/x" },
      dir,
      15_000,
      ["--port", "0", "--data-dir", dataDir],
    );
    try {
      expect((await fetch(`http://127.0.0.1:${child.port}/health`)).status).toBe(200);
      expect(existsSync(join(dataDir, "store.db"))).toBe(true);
    } finally {
      child.proc.kill("SIGTERM");
      await child.proc.exited;
    }
  });

  test("a bad flag value is named as the flag", async () => {
    const r = await run(["serve", "--port", "http"], { CODEX_LB_DATA_DIR: join(dir, "bad-port") });
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain("--port");
    expect(existsSync(join(dir, "bad-port"))).toBe(false);
  });

  test("an unusable data dir names CODEX_LB_DATA_DIR, exit 2", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "not a dir");
    for (const args of [["serve"], ["migrate"], ["keys", "list"]]) {
      const r = await run(args, { CODEX_LB_DATA_DIR: join(file, "data"), CODEX_LB_PORT: "0" });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toContain("CODEX_LB_DATA_DIR");
      expect(r.err).toContain(join(file, "data"));
    }
  });

  test("a busy port names CODEX_LB_PORT; a host that is not this machine's names CODEX_LB_HOST", async () => {
    const busy = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("other program") });
    try {
      const r = await run(["serve"], {
        CODEX_LB_DATA_DIR: join(dir, "busy"),
        CODEX_LB_PORT: String(busy.port),
      });
      expect(r.code).toBe(2);
      expect(r.err).toContain("CODEX_LB_PORT");
      expect(r.err).toContain("already in use");
    } finally {
      busy.stop(true);
    }
    const h = await run(["serve", "--host", "192.0.2.1", "--port", "0"], {
      CODEX_LB_DATA_DIR: join(dir, "host"),
    });
    expect(h.code).toBe(2);
    expect(h.err).toContain("CODEX_LB_HOST");
    expect(h.err).toContain("not an address of this machine");
  });

  test(".env is read, .env.local and other .env.* files are not", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "codex-lb-dotenv-"));
    try {
      writeFileSync(join(cwd, ".env.local"), "CODEX_LB_PORT=abc\n");
      writeFileSync(join(cwd, ".env.production"), "CODEX_LB_PORT=abc\n");
      writeFileSync(join(cwd, ".env"), "CODEX_LB_MODELS_CACHE_SECONDS=77\n");
      const r = await run(["config", "--json"], {}, cwd);
      expect(r.code).toBe(0);
      const cfg = JSON.parse(r.out) as { port: number; modelsCacheSeconds: number };
      expect(cfg.port).toBe(2455);
      expect(cfg.modelsCacheSeconds).toBe(77);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe("listings and completions", () => {
  test("keys: create, list (--json), revoke; every store command names its store", async () => {
    const env = { CODEX_LB_DATA_DIR: join(dir, "keys") };
    const created = await run(
      ["keys", "create", "ci-bot", "--models", "gpt-5.2,gpt-5.2-codex", "--json"],
      env,
    );
    expect(created.code).toBe(0);
    expect(created.err).toBe(`codex-lb: store ${join(dir, "keys", "store.db")}\n`);
    const key = JSON.parse(created.out) as { id: string; key: string };
    expect(key.key).toStartWith("sk-clb-");
    const list = await run(["keys", "list", "--json"], env);
    const items = (JSON.parse(list.out) as { items: { id: string; name: string; allowedModels: string[] }[] })
      .items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      id: key.id,
      name: "ci-bot",
      allowedModels: ["gpt-5.2", "gpt-5.2-codex"],
    });
    expect(list.out).not.toContain(key.key);
    const table = await run(["keys", "list"], env);
    expect(table.out.split("\n")[0]).toMatch(/^ID\s+NAME\s+PREFIX/);
    expect((await run(["keys", "revoke", key.id], env)).code).toBe(0);
    expect(JSON.parse((await run(["keys", "list", "--json"], env)).out)).toEqual({ items: [] });
    const again = await run(["keys", "revoke", key.id], env);
    expect(again.code).toBe(1);
    expect(again.err).toContain("no API key");
  }, 60_000);

  test("bash completion completes commands, subcommands and flags from the same table", async () => {
    const script = (await run(["completions", "bash"])).out;
    const file = join(dir, "c.bash");
    writeFileSync(file, script);
    const probe = (words: string[]) =>
      Bun.spawnSync([
        "bash",
        "-c",
        `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _codex_lb; echo "\${COMPREPLY[*]}"`,
      ])
        .stdout.toString()
        .trim();
    expect(probe(["codex-lb", "acc"])).toBe("accounts");
    expect(probe(["codex-lb", "accounts", ""]).split(" ")).toEqual(
      expect.arrayContaining(["list", "import", "export", "pause", "resume", "remove"]),
    );
    expect(probe(["codex-lb", "accounts", "list", "--"])).toBe("--json --help");
    expect(probe(["codex-lb", "serve", "--da"])).toBe("--data-dir");
  }, 30_000);

  // Debian's fish and zsh (.ci/run installs them): the scripts are loaded by the real shells.
  test("fish completion, asked through fish itself, completes from the same table", async () => {
    const file = join(dir, "c.fish");
    writeFileSync(file, (await run(["completions", "fish"])).out);
    const probe = (line: string) => {
      const r = Bun.spawnSync([
        "fish",
        "--no-config",
        "-c",
        `source ${file}; complete -C${JSON.stringify(line)}`,
      ]);
      expect(r.stderr.toString()).toBe("");
      return r.stdout
        .toString()
        .trim()
        .split("\n")
        .map((l) => l.split("\t")[0]);
    };
    expect(probe("codex-lb acc")).toEqual(["accounts"]);
    expect(probe("codex-lb accounts ").sort()).toEqual([
      "export",
      "import",
      "list",
      "pause",
      "remove",
      "resume",
    ]);
    expect(probe("codex-lb accounts list --").sort()).toEqual(["--help", "--json"]);
    expect(probe("codex-lb serve --da")).toEqual(["--data-dir"]);
    expect(probe("codex-lb completions ").sort()).toEqual(["bash", "fish", "zsh"]);
  }, 30_000);

  test("zsh completion registers with compinit and answers from the same table", async () => {
    const file = join(dir, "c.zsh");
    const script = (await run(["completions", "zsh"])).out;
    expect(script).toStartWith("#compdef codex-lb");
    writeFileSync(file, script);
    // zsh filters the candidates by the typed prefix itself; COMPREPLY is the candidate set.
    const probe = (words: string[]) => {
      const r = Bun.spawnSync([
        "zsh",
        "-f",
        "-c",
        `autoload -U compinit && compinit -u -d ${join(dir, "zcompdump")}; source ${file}; print -r -- "$_comps[codex-lb]"; ` +
          `setopt ksharrays; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _codex_lb; print -r -- "\${COMPREPLY[*]}"`,
      ]);
      expect(r.stderr.toString()).toBe("");
      const [registered, reply] = r.stdout.toString().trim().split("\n");
      expect(registered).toBe("_bash_complete -F _codex_lb");
      return (reply ?? "").split(" ");
    };
    expect(probe(["codex-lb", ""])).toEqual(expect.arrayContaining(["accounts", "keys", "doctor", "backup"]));
    const accounts = probe(["codex-lb", "accounts", ""]);
    expect(accounts).toEqual(
      expect.arrayContaining(["list", "import", "export", "pause", "resume", "remove"]),
    );
    expect(accounts).not.toContain("serve");
    expect(probe(["codex-lb", "accounts", "list", "--"])).toEqual(["--json", "--help"]);
  }, 30_000);
});
