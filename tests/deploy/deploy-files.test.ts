/**
 * The deployment files, tested where they can be without root or a Docker engine: the systemd unit
 * passes `systemd-analyze verify` and its command line and environment start a working gateway;
 * the Dockerfile's stages, base, user, settings and command line are checked (the image itself is
 * not built here: no Docker engine on these machines, as docs/deploy.md says).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root } from "../../src/cli/main.ts";
import { loadSettings } from "../../src/settings/load.ts";
import { repoRoot, spawnServe } from "../support/process.ts";

const unit = readFileSync(join(repoRoot, "deploy/codex-lb.service"), "utf8");
const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
const deployDoc = readFileSync(join(repoRoot, "docs/deploy.md"), "utf8");
const values = (key: string) =>
  unit
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
const unitEnv = Object.fromEntries(values("Environment").map((e) => e.split("=", 2) as [string, string]));
const systemdAnalyze = Bun.which("systemd-analyze");

describe("systemd unit", () => {
  test("is the one shown in docs/deploy.md", () => {
    expect(deployDoc).toContain(`\`\`\`ini\n${unit}\`\`\``);
  });

  test.skipIf(!systemdAnalyze)("passes systemd-analyze verify without a warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-unit-"));
    try {
      // verify needs the executable to exist: point ExecStart at something that does.
      const exe = process.env.CODEX_LB_BIN ?? process.execPath;
      writeFileSync(join(dir, "codex-lb.service"), unit.replaceAll("/usr/local/bin/codex-lb", exe));
      const r = Bun.spawnSync([systemdAnalyze!, "verify", join(dir, "codex-lb.service")]);
      expect(r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("graceful stop fits: TimeoutStopSec is above the shutdown grace; exit 2 is not restarted", () => {
    expect(Number(values("TimeoutStopSec")[0])).toBeGreaterThan(loadSettings({}).shutdownGraceSeconds);
    expect(values("RestartPreventExitStatus")).toEqual(["2"]);
    expect(values("StateDirectoryMode")).toEqual(["0700"]);
  });

  test("its ExecStart and Environment start a gateway that answers /health", async () => {
    const [bin, ...args] = values("ExecStart")[0]!.split(" ");
    expect(bin).toBe("/usr/local/bin/codex-lb");
    expect(Object.keys(unitEnv).every((k) => k.startsWith("CODEX_LB_"))).toBe(true);
    loadSettings(unitEnv); // throws on an invalid or unknown setting
    expect(args[0]).toBe("serve");
    const dir = mkdtempSync(join(tmpdir(), "codex-lb-unit-run-"));
    const child = await spawnServe(
      { ...unitEnv, CODEX_LB_DATA_DIR: join(dir, "data"), CODEX_LB_PORT: "0" },
      dir,
      15_000,
      args.slice(1),
    );
    try {
      expect((await fetch(`http://127.0.0.1:${child.port}/health`)).status).toBe(200);
    } finally {
      child.proc.kill("SIGTERM");
      expect(await child.proc.exited).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Dockerfile", () => {
  const lines = dockerfile.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  const from = lines.filter((l) => l.startsWith("FROM "));

  test("two stages: Bun builds the binary, a distroless nonroot image runs it alone", () => {
    expect(from).toHaveLength(2);
    expect(from[0]).toMatch(/^FROM oven\/bun:\S+ AS build$/);
    expect(from[1]).toBe("FROM gcr.io/distroless/cc-debian12:nonroot");
    expect(dockerfile).toContain("RUN bun install --frozen-lockfile");
    expect(dockerfile).toContain("bun run build");
    expect(dockerfile).toContain("COPY --from=build /src/dist/codex-lb /usr/local/bin/codex-lb");
    expect(lines).toContain("USER 65532:65532");
    expect(existsSync(join(repoRoot, ".dockerignore"))).toBe(true);
  });

  test("the Bun version of the build stage is the one this repository is built with", () => {
    expect(from[0]).toContain(`oven/bun:${Bun.version}`);
  });

  test("its settings are valid and its command line is one the binary accepts", () => {
    const envBlock = dockerfile.slice(dockerfile.indexOf("ENV "), dockerfile.indexOf("VOLUME"));
    const env = Object.fromEntries(
      [...envBlock.matchAll(/(CODEX_LB_[A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
    );
    expect(env).toMatchObject({ CODEX_LB_DATA_DIR: "/data", CODEX_LB_HOST: "0.0.0.0" });
    expect(loadSettings(env).dataDir).toBe("/data");
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)![1]!) as string[];
    expect(JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)![1]!)).toEqual(["/usr/local/bin/codex-lb"]);
    expect(root.subcommands!.map((c) => c.name)).toContain(cmd[0]!);
    expect(/^VOLUME \["\/data"\]$/m.test(dockerfile)).toBe(true);
    expect(/^EXPOSE 2455\b/m.test(dockerfile)).toBe(true);
  });

  test("the image keeps freed memory for reuse (MIMALLOC_PURGE_DELAY=-1), as docs/deploy.md says", () => {
    const envBlock = dockerfile.slice(dockerfile.indexOf("\nENV "), dockerfile.indexOf("VOLUME"));
    expect(envBlock).toMatch(/\sMIMALLOC_PURGE_DELAY=-1\s/);
    expect(deployDoc).toContain("starts Bun's allocator (mimalloc) with `MIMALLOC_PURGE_DELAY=-1`");
    expect(deployDoc).toContain("(the image sets it too");
  });

  test("docs/deploy.md says the image is not built in CI", () => {
    expect(deployDoc).toContain("The image build is not run in CI");
  });
});
