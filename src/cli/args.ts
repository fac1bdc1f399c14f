/**
 * The command table's types and the argument parser. A command declares its flags and positional
 * arguments; the parser refuses anything else (exit 2) and never runs a command that was asked for
 * its help. One table feeds the help texts, the parser and the shell completions.
 *
 * @module
 */

/** Exit codes of every command (documented in the README). */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (a check failed, the store could not be written, ...). */
  failure: 1,
  /** Bad usage or configuration: unknown flag, missing argument, invalid setting. Nothing was done. */
  usage: 2,
} as const;

export interface FlagSpec {
  /** Long name without dashes: `json`, `data-dir`. */
  readonly name: string;
  readonly short?: string;
  /** Placeholder of the value (`PORT`); absent for a switch. */
  readonly value?: string;
  readonly help: string;
}

export interface ArgSpec {
  readonly name: string;
  readonly optional?: boolean;
  /** What shells should complete it with. */
  readonly complete?: "file" | "none";
  /** The only values it takes (completed by the shells). */
  readonly choices?: readonly string[];
}

export interface Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export interface Parsed {
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly args: readonly string[];
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Paragraphs after the usage line. */
  readonly description?: string;
  readonly flags?: readonly FlagSpec[];
  readonly args?: readonly ArgSpec[];
  /** A group (`accounts`) has subcommands and no `run` of its own. */
  readonly subcommands?: readonly Command[];
  run?(p: Parsed, io: Io): Promise<number>;
}

/** Bad usage; the message is one line, printed with the command's usage hint. Exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export const HELP_FLAG: FlagSpec = { name: "help", short: "h", help: "print this help and exit" };

/** `codex-lb accounts list [--json]` */
export function usageLine(path: readonly string[], cmd: Command): string {
  const parts = ["codex-lb", ...path];
  if (cmd.subcommands) parts.push("<command>");
  for (const f of cmd.flags ?? []) parts.push(f.value ? `[--${f.name} ${f.value}]` : `[--${f.name}]`);
  for (const a of cmd.args ?? []) parts.push(a.optional ? `[${a.name}]` : a.name);
  return parts.join(" ");
}

/** The help text of a command (or group). */
export function helpText(path: readonly string[], cmd: Command): string {
  const lines = [`${cmd.summary}`, "", `Usage: ${usageLine(path, cmd)}`];
  if (cmd.description) lines.push("", cmd.description);
  if (cmd.subcommands) {
    lines.push("", "Commands:");
    const w = Math.max(...cmd.subcommands.map((c) => c.name.length));
    for (const c of cmd.subcommands) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
    lines.push("", `Run \`${["codex-lb", ...path].join(" ")} <command> --help\` for a command's flags.`);
  }
  const flags = [...(cmd.flags ?? []), HELP_FLAG];
  lines.push("", "Flags:");
  const label = (f: FlagSpec) =>
    `${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? ` ${f.value}` : ""}`;
  const w = Math.max(...flags.map((f) => label(f).length));
  for (const f of flags) lines.push(`  ${label(f).padEnd(w)}  ${f.help}`);
  return `${lines.join("\n")}\n`;
}

/** Resolves `argv` to the deepest command it names: the command, its path and the rest of argv. */
export function resolve(
  root: Command,
  argv: readonly string[],
): { cmd: Command; path: string[]; rest: string[] } {
  let cmd = root;
  const path: string[] = [];
  let i = 0;
  while (cmd.subcommands && i < argv.length) {
    const word = argv[i]!;
    if (word.startsWith("-")) break;
    const sub = cmd.subcommands.find((c) => c.name === word);
    if (!sub) {
      const where = path.length ? `codex-lb ${path.join(" ")}` : "codex-lb";
      throw new UsageError(`unknown command ${JSON.stringify(word)} for ${where}`);
    }
    cmd = sub;
    path.push(word);
    i++;
  }
  return { cmd, path, rest: argv.slice(i) };
}

/** Whether a help flag appears before `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

/** Parses flags and positionals against the command's declaration; throws UsageError. */
export function parse(cmd: Command, argv: readonly string[]): Parsed {
  const specs = cmd.flags ?? [];
  const flags: Record<string, string | boolean | undefined> = {};
  const args: string[] = [];
  let onlyArgs = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (onlyArgs || a === "-" || !a.startsWith("-")) {
      args.push(a);
      continue;
    }
    if (a === "--") {
      onlyArgs = true;
      continue;
    }
    const long = a.startsWith("--");
    const eq = a.indexOf("=");
    const name = long ? a.slice(2, eq > 0 ? eq : undefined) : a.slice(1);
    const spec = specs.find((f) => (long ? f.name === name : f.short === name));
    if (!spec) throw new UsageError(`unknown flag ${long ? `--${name}` : a}`);
    if (spec.value) {
      let value: string | undefined;
      if (long && eq > 0) value = a.slice(eq + 1);
      else value = argv[++i];
      if (value === undefined) throw new UsageError(`--${spec.name} needs a value (${spec.value})`);
      flags[spec.name] = value;
    } else {
      if (long && eq > 0) throw new UsageError(`--${spec.name} takes no value`);
      flags[spec.name] = true;
    }
  }
  const declared = cmd.args ?? [];
  const required = declared.filter((d) => !d.optional).length;
  if (args.length < required) {
    throw new UsageError(`missing ${declared[args.length]!.name}`);
  }
  if (args.length > declared.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(args[declared.length])}`);
  }
  return { flags, args };
}
