/**
 * One encryption key for every replica: a gateway whose key cannot decrypt the tokens another
 * replica stored refuses to start (exit 2, one line naming the key file), on PostgreSQL and on
 * SQLite alike; with the same key copied over it starts.
 */
import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeAuth } from "../fakes/auth.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import { codexLbCommand, spawnServe } from "../support/process.ts";
import { storeVariants } from "../support/stores.ts";

for (const variant of storeVariants) {
  test(`${variant.name}: a replica with another key exits 2 with one line; with the first one's key it starts`, async () => {
    const location = await variant.location("key");
    const url = location.kind === "sqlite" ? location.path : location.url;
    const first = mkdtempSync(join(tmpdir(), "codex-lb-key-a-"));
    const second = mkdtempSync(join(tmpdir(), "codex-lb-key-b-"));
    const env = { CODEX_LB_DATABASE_URL: url, CODEX_LB_OAUTH_CALLBACK_PORT: "0", CODEX_LB_LOG_LEVEL: "warn" };
    // The first replica stores an account's tokens under its own (new) key.
    const a = await spawnServe({ ...env, CODEX_LB_DATA_DIR: first, CODEX_LB_LOG_LEVEL: "info" }, first);
    const bundle = fakeAuth().issue(identity("key"));
    const res = await fetch(`http://127.0.0.1:${a.port}/api/accounts/import`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(authJsonOf(bundle)),
    });
    expect(res.status).toBe(200);
    a.proc.kill("SIGTERM");
    await a.proc.exited;
    // The second one starts with a key of its own: refused before it listens.
    const b = Bun.spawn([...codexLbCommand(), "serve"], {
      cwd: second,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: second,
        CODEX_LB_PORT: "0",
        CODEX_LB_DATA_DIR: second,
        ...env,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const code = await b.exited;
    const err = await new Response(b.stderr).text();
    expect(code).toBe(2);
    expect(err.trim().split("\n")).toHaveLength(1);
    expect(err).toContain("encryption.key cannot decrypt the tokens stored in");
    expect(err).not.toContain(bundle.refreshToken);
    // With the first replica's key copied over, it starts.
    copyFileSync(join(first, "encryption.key"), join(second, "encryption.key"));
    const again = await spawnServe({ ...env, CODEX_LB_DATA_DIR: second, CODEX_LB_LOG_LEVEL: "info" }, second);
    again.proc.kill("SIGTERM");
    expect(await again.proc.exited).toBe(0);
    rmSync(first, { recursive: true, force: true });
    rmSync(second, { recursive: true, force: true });
  }, 60_000);
}
