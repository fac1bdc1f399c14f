/**
 * What the benchmark scripts share about the processes they measure: CPU time and memory from
 * /proc, and starting a role (`bun scripts/bench.ts upstream|gateway|…`, or any command that prints
 * `PORT <n>` and, for a gateway, `KEY <key>`) and waiting until it listens. 127.0.0.1 only.
 *
 * @module
 */
import { readFileSync } from "node:fs";

const TICK_US = 1e6 / 100; // USER_HZ: /proc/PID/stat counts CPU in 1/100 s on Linux

/** CPU time (user + system) a process has used so far, in µs. */
export function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5) (utime, stime); the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

/** A /proc/PID/status field in MB (VmRSS, VmHWM). */
export function statusMb(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export interface Listening {
  readonly proc: ReturnType<typeof Bun.spawn>;
  readonly pid: number;
  readonly url: string;
  /** The API key a bench gateway printed (null for other roles). */
  readonly key: string | null;
  /** SIGTERM, then SIGKILL after 5 s. */
  kill(): Promise<void>;
}

/** Runs `cmd` (in `cwd`, with `env`: the script's own by default) and waits (up to 60 s) until it prints `PORT <n>`. */
export async function spawnListening(
  cmd: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<Listening> {
  const proc = Bun.spawn(cmd, {
    stdout: "pipe",
    stderr: "inherit",
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  const reader = proc.stdout.getReader();
  const name = cmd.slice(1).join(" ");
  let buf = "";
  const deadline = performance.now() + 60_000;
  while (!/PORT (\d+)/.test(buf)) {
    if (performance.now() > deadline) throw new Error(`${name} did not start`);
    const r = await reader.read();
    if (r.done) throw new Error(`${name} exited before listening`);
    buf += new TextDecoder().decode(r.value);
  }
  reader.releaseLock();
  return {
    proc,
    pid: proc.pid,
    url: `http://127.0.0.1:${/PORT (\d+)/.exec(buf)![1]}`,
    key: /KEY (\S+)/.exec(buf)?.[1] ?? null,
    kill: async () => {
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(5000)]);
      proc.kill("SIGKILL");
    },
  };
}
