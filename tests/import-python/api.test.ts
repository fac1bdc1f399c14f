/**
 * `POST /api/import/python`: multipart upload of the Python codex-lb's store.db and key, admin
 * only, same-origin only; dry run, wrong key (400, nothing written), bad input (4xx JSON), and an
 * import whose result the running gateway sees at once (caches dropped), documented in /docs.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeAuth } from "../fakes/auth.ts";
import { cookieOf, REMOTE_IP, remoteFetch } from "../support/admin.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { fernetKey, writePythonDataDir } from "./python-fixture.ts";
import { fingerprint, PY_ADMIN_PASSWORD, standardScenario } from "./scenario.ts";

const root = mkdtempSync(join(tmpdir(), "codex-lb-import-api-"));
const pyDir = join(root, "py");
let gw: TestGateway;
let storeBytes: Uint8Array<ArrayBuffer>;
let keyText: string;

beforeAll(async () => {
  await writePythonDataDir(pyDir, standardScenario(fakeAuth(), { totp: false }).spec);
  storeBytes = new Uint8Array(readFileSync(join(pyDir, "store.db")));
  keyText = readFileSync(join(pyDir, "encryption.key"), "utf8");
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
  rmSync(root, { recursive: true, force: true });
});

function upload(
  parts: {
    store?: Uint8Array<ArrayBuffer> | string;
    key?: string;
    dryRun?: string;
    withHistory?: string;
  } = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  const form = new FormData();
  const store = parts.store ?? storeBytes;
  form.set("store", new Blob([store]), "store.db");
  if (parts.key !== "") form.set("key", new Blob([parts.key ?? keyText]), "encryption.key");
  if (parts.dryRun) form.set("dryRun", parts.dryRun);
  if (parts.withHistory) form.set("withHistory", parts.withHistory);
  return fetch(`${gw.url}/api/import/python`, { method: "POST", body: form, headers });
}

const accountCount = async () =>
  (await gw.running.store.db.selectFrom("accounts").select("id").execute()).length;
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

test("bad requests get a 4xx JSON error and write nothing", async () => {
  const json = await fetch(`${gw.url}/api/import/python`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  expect(json.status).toBe(415);
  const cross = await upload({}, { origin: "https://evil.example" });
  expect(cross.status).toBe(403);
  expect(await errorCode(cross)).toBe("cross_origin_refused");
  expect((await upload({}, { "sec-fetch-site": "cross-site" })).status).toBe(403);
  const noKey = await upload({ key: "" });
  expect(noKey.status).toBe(400);
  expect(await errorCode(noKey)).toBe("python_import_invalid");
  const notFernet = await upload({ key: "hello" });
  expect(notFernet.status).toBe(400);
  const junk = await upload({ store: "not a database" });
  expect(junk.status).toBe(400);
  expect(((await junk.json()) as { error: { message: string } }).error.message).toContain(
    "not a Python codex-lb store",
  );
  const truncated = await fetch(`${gw.url}/api/import/python`, {
    method: "POST",
    headers: { "content-type": "multipart/form-data; boundary=xyz" },
    body: '--xyz\r\nContent-Disposition: form-data; name="store"\r\n\r\nabc',
  });
  expect(truncated.status).toBeGreaterThanOrEqual(400);
  expect(truncated.status).toBeLessThan(500);
  // Remote callers need the admin session (none exists yet: only this machine may use the admin API).
  const form = new FormData();
  form.set("store", new Blob([storeBytes]));
  form.set("key", keyText);
  expect(
    (await remoteFetch(gw, "/api/import/python", { method: "POST", body: form }, REMOTE_IP)).status,
  ).toBe(401);
  expect(await accountCount()).toBe(0);
});

test("a wrong key: 400 python_import_wrong_key, nothing written", async () => {
  const res = await upload({ key: fernetKey() });
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("python_import_wrong_key");
  expect(body.error.message).toContain("the uploaded key does not decrypt");
  expect(await accountCount()).toBe(0);
});

test("dryRun=true answers the summary and writes nothing", async () => {
  const res = await upload({ dryRun: "true" });
  expect(res.status).toBe(200);
  const s = (await res.json()) as { dryRun: boolean; counts: { accounts: { created: number } } };
  expect(s.dryRun).toBe(true);
  expect(s.counts.accounts.created).toBe(3);
  expect(await accountCount()).toBe(0);
});

test("the import: the running gateway sees it at once; the old password then guards the admin API", async () => {
  const before = fingerprint(pyDir);
  const res = await upload({ withHistory: "true" }, { origin: gw.url });
  expect(res.status).toBe(200);
  const s = (await res.json()) as {
    counts: {
      accounts: { created: number };
      admin: { password: boolean; totp: boolean };
      history: { imported: number; skipped: number } | null;
    };
    skipped: { kind: string; item: string }[];
  };
  expect(s.counts.accounts.created).toBe(3);
  expect(s.counts.admin).toEqual({ password: true, totp: false });
  expect(s.counts.history).toEqual({ imported: 25, skipped: 0 });
  expect(s.skipped.map((k) => k.item)).toContain("py_deleted");
  expect(fingerprint(pyDir)).toEqual(before);
  // The admin API now needs the imported (old) password.
  expect((await fetch(`${gw.url}/api/accounts`)).status).toBe(401);
  const login = await fetch(`${gw.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: gw.url },
    body: JSON.stringify({ password: PY_ADMIN_PASSWORD }),
  });
  expect(login.status).toBe(200);
  const cookie = cookieOf(login)!;
  const get = async (path: string) => (await fetch(`${gw.url}${path}`, { headers: { cookie } })).json();
  const accounts = (await get("/api/accounts")) as { accounts: { email: string }[] };
  expect(accounts.accounts).toHaveLength(3);
  const settings = (await get("/api/settings")) as { routingStrategy: string; stickyTtlSeconds: number };
  expect(settings.routingStrategy).toBe("round_robin");
  expect(settings.stickyTtlSeconds).toBe(3600);
  const fw = (await get("/api/firewall")) as { entries: { entry: string }[] };
  expect(fw.entries.map((e) => e.entry).sort()).toEqual(["10.1.2.3", "127.0.0.1", "2001:db8::1"]);
  const auditRows = await gw.running.store.db
    .selectFrom("audit_logs")
    .select("action")
    .where("action", "=", "import.python")
    .execute();
  expect(auditRows).toHaveLength(1);
  // Documented in the OpenAPI document as a multipart upload.
  const doc = (await get("/docs/json")) as {
    paths: Record<string, { post?: { requestBody?: { content?: Record<string, unknown> } } }>;
  };
  expect(Object.keys(doc.paths["/api/import/python"]?.post?.requestBody?.content ?? {})).toEqual([
    "multipart/form-data",
  ]);
});
