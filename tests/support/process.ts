/**
 * Runs the codex-lb command as a child process (the source entry by default, or a built binary)
 * and waits for its "listening" log line.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** The command that runs codex-lb: `CODEX_LB_BIN` (a built binary) or `bun src/cli/main.ts`. */
export function codexLbCommand(): string[] {
  const bin = process.env.CODEX_LB_BIN;
  // --no-env-file: like the binary (built without .env autoloading), Bun itself reads no .env.* file;
  // codex-lb reads `.env` on its own.
  return bin ? [bin] : [process.execPath, "--no-env-file", `${repoRoot}src/cli/main.ts`];
}

export interface Child {
  readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  readonly port: number;
  readonly output: () => string;
  /** Resolves when the child's stdout has closed (all its output read). */
  readonly drained: Promise<void>;
}

/**
 * Starts `codex-lb serve` (with `command`, else {@link codexLbCommand}) and resolves once it logs
 * the port it listens on.
 */
export async function spawnServe(
  env: Record<string, string>,
  cwd: string,
  timeoutMs = 15_000,
  args: readonly string[] = [],
  command: string[] = codexLbCommand(),
): Promise<Child> {
  const proc = Bun.spawn([...command, "serve", ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", CODEX_LB_PORT: "0", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  const deadline = Date.now() + timeoutMs;
  let port = 0;
  while (!port) {
    if (Date.now() > deadline) throw new Error(`codex-lb did not start: ${out}`);
    const { value, done } = await reader.read();
    if (done)
      throw new Error(
        `codex-lb exited early (${await proc.exited}): ${out}${await new Response(proc.stderr).text()}`,
      );
    out += decoder.decode(value, { stream: true });
    const m = /"port":(\d+).*"msg":"codex-lb listening"/.exec(out);
    if (m) port = Number(m[1]);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += decoder.decode(value, { stream: true });
    }
  })();
  return { proc, port, output: () => out, drained };
}
