/**
 * The check that a store file is ours (src/store/foreign.ts) reads it without a lock, so it can meet
 * the file half-written by another process: a serving gateway's checkpoint while an operator runs a
 * CLI command, or a second `codex-lb migrate`. Such a read is tried again instead of failing with
 * "database disk image is malformed" (about 1 in 800 reads did, before).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectStoreFile } from "../../src/store/foreign.ts";

const dir = mkdtempSync(join(tmpdir(), "codex-lb-churn-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const churn = fileURLToPath(new URL("../fixtures/sqlite-churn.ts", import.meta.url));

test("a store file checked while another process writes and checkpoints it is always found ours", async () => {
  const path = join(dir, "store.db");
  const writer = Bun.spawn([process.execPath, churn, path, "400"], { stdout: "pipe", stderr: "inherit" });
  const reader = writer.stdout.getReader();
  let out = "";
  while (!out.includes("READY")) {
    const r = await reader.read();
    if (r.done) throw new Error(`writer ended before it was ready: ${out}`);
    out += new TextDecoder().decode(r.value);
  }
  const kinds = new Map<string, number>();
  const failures: string[] = [];
  let reads = 0;
  let done = false;
  void writer.exited.then(() => {
    done = true;
  });
  while (!done) {
    for (let i = 0; i < 100; i++) {
      reads++;
      try {
        const { kind } = inspectStoreFile(path);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    await Bun.sleep(0);
  }
  expect(await writer.exited).toBe(0);
  expect(failures).toEqual([]);
  expect([...kinds.keys()]).toEqual(["ours"]);
  // Enough reads met the churn for the old check to have failed (it failed about 1 in 800).
  expect(reads).toBeGreaterThan(4000);
}, 60_000);
