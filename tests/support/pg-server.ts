/**
 * A throw-away PostgreSQL 15 server for tests, `.ci/run` and `bun run bench`: Debian's server
 * binaries, a temporary data dir owned by the `postgres` user (initdb refuses root), trust
 * authentication, listening on 127.0.0.1 only on a free port, durability off (it dies with the run).
 *
 * Also a command: `bun tests/support/pg-server.ts start` prints `url=… dir=…`; `… stop DIR` stops it.
 *
 * @module
 */
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"];

export interface PgServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly dir: string;
  /** Stops the server at once (as a crash would), keeping its data: {@link PgServer.resume} starts it again. */
  halt(): void;
  /** Starts a halted server again, on the same port. */
  resume(): void;
  stop(): void;
}

function binDir(): string {
  const dir = BIN_DIRS.find((d) => existsSync(join(d, "initdb")));
  if (!dir) throw new Error("PostgreSQL server binaries not found (apt-get install postgresql-15)");
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

/** Runs a server binary, as the `postgres` user when we are root. */
function run(args: string[]): void {
  const cmd = isRoot() ? ["runuser", "-u", "postgres", "--", ...args] : args;
  const r = Bun.spawnSync(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", LANG: "C" },
  });
  if (r.exitCode !== 0)
    throw new Error(`${args[0]} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
}

export async function startPgServer(): Promise<PgServer> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "codex-lb-pg-"));
  if (isRoot()) {
    const uid = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim());
    const gid = Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  run([
    join(bin, "initdb"),
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-sync",
    "--locale=C",
  ]);
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const opts = [
      `-p ${port}`,
      `-k ${dir}`,
      "-c listen_addresses=127.0.0.1",
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      "-c max_connections=400",
      "-c shared_buffers=32MB",
    ].join(" ");
    const start = () =>
      run([
        join(bin, "pg_ctl"),
        "-D",
        data,
        "-o",
        opts,
        "-l",
        join(dir, "server.log"),
        "-w",
        "-t",
        "30",
        "start",
      ]);
    try {
      start();
      return {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        dir,
        halt: () => run([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]),
        resume: start,
        stop: () => stopPgServer(dir),
      };
    } catch (e) {
      lastError = e; // most likely the port was taken between picking and binding: try another
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

/** Stops the server of `dir` (immediately: nothing in it is worth keeping) and removes the dir. */
export function stopPgServer(dir: string): void {
  try {
    if (existsSync(join(dir, "data", "postmaster.pid")))
      run([join(binDir(), "pg_ctl"), "-D", join(dir, "data"), "-m", "immediate", "-w", "stop"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const [cmd, dir] = process.argv.slice(2);
  if (cmd === "start") {
    const s = await startPgServer();
    console.log(`url=${s.url} dir=${s.dir}`);
  } else if (cmd === "stop" && dir) {
    stopPgServer(dir);
  } else {
    console.error("usage: bun tests/support/pg-server.ts start | stop DIR");
    process.exit(2);
  }
}
