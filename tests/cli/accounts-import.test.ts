import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeAuth } from "../fakes/auth.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import { startGateway } from "../support/gateway.ts";

const dir = mkdtempSync(join(tmpdir(), "codex-lb-cli-"));
const dataDir = join(dir, "data");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...args: string[]) {
  const proc = Bun.spawn(["bun", join(import.meta.dir, "../../src/cli/main.ts"), ...args], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      CODEX_LB_DATA_DIR: dataDir,
      CODEX_LB_LOG_LEVEL: "silent",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { out, err, code };
}

describe("codex-lb accounts import FILE", () => {
  const auth = fakeAuth();
  const who = identity("cli");
  const bundle = auth.issue(who);
  const file = join(dir, "auth.json");
  writeFileSync(file, JSON.stringify(authJsonOf(bundle)));

  test("imports, prints id and email (never a token), exits 0; a second run updates in place", async () => {
    const r = await cli("accounts", "import", file);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      new RegExp(`^added account ${who.chatgptAccountId}_[0-9a-f]{8} \\(${who.email}\\), status active\\n$`),
    );
    for (const t of [bundle.accessToken, bundle.refreshToken, bundle.idToken])
      expect(r.out + r.err).not.toContain(t);
    expect(statSync(join(dataDir, "encryption.key")).mode & 0o777).toBe(0o600);
    const again = await cli("accounts", "import", file);
    expect(again.code).toBe(0);
    expect(again.out).toStartWith("updated account ");
    // The gateway started on that data dir sees the account (same key, same store).
    const gw = await startGateway({ dataDir });
    try {
      const list = (await (await fetch(`${gw.url}/api/accounts`)).json()) as {
        accounts: { email: string }[];
      };
      expect(list.accounts.map((a) => a.email)).toEqual([who.email]);
      const id = (list.accounts[0] as unknown as { id: string }).id;
      const exp = (await (
        await fetch(`${gw.url}/api/accounts/${id}/export/auth`, { method: "POST" })
      ).json()) as { tokens: { refreshToken: string } };
      expect(exp.tokens.refreshToken).toBe(bundle.refreshToken);
    } finally {
      await gw.stop();
    }
  });

  test("a bad file exits 2 with one line", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ tokens: { id_token: "a.b.c" } }));
    const r = await cli("accounts", "import", bad);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain("tokens.access_token");
    const missing = await cli("accounts", "import", join(dir, "nope.json"));
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("cannot read");
    const usage = await cli("accounts");
    expect(usage.code).toBe(2);
  });
});
