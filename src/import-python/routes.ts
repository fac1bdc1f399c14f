/**
 * `POST /api/import/python`: the same import as `codex-lb import-python`, from an upload of the
 * Python codex-lb's `store.db` and `encryption.key` (what the dashboard's settings page sends).
 *
 * This admin route takes `multipart/form-data`, a deliberate exception to the JSON-only admin
 * API (listed in `formUploadPaths`, src/access/csrf.ts): a SQLite file is binary. It still needs
 * the admin session like every `/api/*` route, and the cross-site refusal applies to it as to every
 * state-changing request (an `Origin` other than the gateway's own, `Sec-Fetch-Site: cross-site`
 * or `same-site`: 403), which matters here since a browser sends a multipart form across sites
 * without a preflight. The upload is written to a private temporary folder, read, and deleted.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Elysia, t } from "elysia";
import { TokenCipher } from "../accounts/crypto.ts";
import { guardErrorOf } from "../core/body-guard.ts";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import { requestInfo } from "../core/request-info.ts";
import { ErrorBody } from "../core/schemas.ts";
import { audit, auditContext } from "../store/audit.ts";
import { FernetKey } from "./fernet.ts";
import { applyPythonImport, preparePythonImport } from "./import.ts";
import { ImportSourceError } from "./read.ts";

const Counts = t.Object({ created: t.Integer(), updated: t.Integer() });
export const ImportSummaryView = t.Object({
  dryRun: t.Boolean(),
  source: t.Object({
    store: t.String(),
    key: t.String(),
    alembicVersion: t.Union([t.String(), t.Null()], { description: "The Python store's schema revision" }),
  }),
  counts: t.Object({
    accounts: Counts,
    apiKeys: Counts,
    limits: t.Object({ imported: t.Integer() }),
    firewall: t.Object({ created: t.Integer(), existing: t.Integer() }),
    stickySessions: Counts,
    settings: t.Object({ imported: t.Array(t.String(), { description: "Runtime settings set" }) }),
    admin: t.Object({ password: t.Boolean(), totp: t.Boolean() }),
    history: t.Union([t.Object({ imported: t.Integer(), skipped: t.Integer() }), t.Null()], {
      description: "Request-log rows copied; null without withHistory",
    }),
  }),
  skipped: t.Array(
    t.Object({
      kind: t.String({ description: "account, api_key, limit, firewall, sticky_session, setting or admin" }),
      item: t.String(),
      reason: t.String(),
    }),
    { description: "Every row or value not imported, with the reason" },
  ),
  notes: t.Array(t.String()),
});

async function partBytes(form: FormData, name: string): Promise<Uint8Array> {
  const part = form.get(name);
  if (part === null)
    throw new GatewayError("python_import_invalid", `The multipart body has no \`${name}\` field`);
  return typeof part === "string" ? new TextEncoder().encode(part) : new Uint8Array(await part.arrayBuffer());
}

export function importPythonRoutes(deps: AppDeps) {
  return new Elysia({ name: "routes:import-python" }).use(requestInfo).post(
    "/api/import/python",
    async ({ request, info }) => {
      const type = request.headers.get("content-type") ?? "";
      if (!type.toLowerCase().startsWith("multipart/form-data"))
        throw new GatewayError(
          "unsupported_media_type",
          "Send multipart/form-data with `store` and `key` files",
        );
      let form: FormData;
      try {
        form = await request.formData();
      } catch (e) {
        // Over the size limit or past the body deadline: that answer (413 / 408), not "unreadable".
        throw (
          guardErrorOf(e) ?? new GatewayError("python_import_invalid", "The multipart body could not be read")
        );
      }
      const storeBytes = await partBytes(form, "store");
      const key = FernetKey.parse(new TextDecoder().decode(await partBytes(form, "key")));
      if (!key)
        throw new GatewayError(
          "python_import_invalid",
          "`key` is not a Fernet key (44 characters of URL-safe base64)",
        );
      const flag = (name: string) => {
        const v = form.get(name);
        return typeof v === "string" && ["true", "1", "yes", "on"].includes(v.trim().toLowerCase());
      };
      const dryRun = flag("dryRun");
      const withHistory = flag("withHistory");
      const dir = mkdtempSync(join(tmpdir(), "codex-lb-upload-"));
      try {
        const storePath = join(dir, "store.db");
        writeFileSync(storePath, storeBytes, { mode: 0o600 });
        const now = deps.clock();
        const prepared = await preparePythonImport({ storePath, keyPath: "the uploaded key", key, now });
        const summary = await applyPythonImport(
          { ...prepared, storePath: "the uploaded store.db" },
          {
            db: deps.store.db,
            cipher: TokenCipher.forDataDir(deps.settings.dataDir),
            dryRun,
            now,
            withHistory,
          },
        );
        if (!dryRun) {
          // Written behind the caches' backs: drop them so the next request sees the import.
          deps.accounts.invalidate();
          deps.access.firewall.invalidate();
          deps.access.keyStates.invalidate();
          deps.runtimeSettings.invalidate();
          deps.sticky.invalidate();
          await audit(deps.store.db, {
            action: "import.python",
            ...auditContext(info),
            details: { counts: summary.counts, skipped: summary.skipped.length },
          });
          deps.log.info(
            { counts: summary.counts, skipped: summary.skipped.length },
            "python codex-lb store imported",
          );
        }
        return { ...summary, skipped: [...summary.skipped], notes: [...summary.notes] };
      } catch (e) {
        if (e instanceof ImportSourceError)
          throw new GatewayError(
            e.code === "wrong_key" ? "python_import_wrong_key" : "python_import_invalid",
            e.message,
          );
        throw e;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    {
      parse: "none",
      detail: {
        tags: ["import"],
        summary: "Import a Python codex-lb install (upload its store.db and encryption.key)",
        description:
          "Multipart upload (an exception to the JSON-only admin API; same-origin only): `store` is the Python codex-lb's `store.db` (stop it first so its write-ahead log is merged), `key` its `encryption.key`, optional `dryRun=true` to see what would be imported without writing, optional `withHistory=true` to copy the request logs too (replacing ones an earlier import copied). Accounts, API keys and limits, firewall, sticky sessions, routing strategy, sticky TTL, API-key auth flag, admin password and TOTP are imported in one transaction; a second import updates. The answer lists every item not imported with the reason. A wrong key answers 400 `python_import_wrong_key` and writes nothing. Larger stores than `CODEX_LB_MAX_BODY_BYTES`: use `codex-lb import-python DIR`.",
        requestBody: {
          required: true,
          content: {
            "multipart/form-data": {
              schema: {
                type: "object",
                properties: {
                  store: { type: "string", format: "binary", description: "The Python codex-lb's store.db" },
                  key: { type: "string", format: "binary", description: "Its encryption.key (Fernet)" },
                  dryRun: { type: "string", enum: ["true", "false"], description: "true: write nothing" },
                  withHistory: {
                    type: "string",
                    enum: ["true", "false"],
                    description: "true: copy the request logs too",
                  },
                },
                required: ["store", "key"],
              },
            },
          },
        },
      },
      response: { 200: ImportSummaryView, 400: ErrorBody, 415: ErrorBody },
    },
  );
}
