/**
 * Commands that read or change the store directly (no running gateway needed; a running one sees
 * the change within a second): `accounts …`, `keys …`, `admin reset-password`.
 *
 * @module
 */

import { writeFileSync } from "node:fs";
import { writeCredentials } from "../access/admin-auth/credentials.ts";
import { createApiKey, deleteApiKey, listApiKeys } from "../access/api-keys/repository.ts";
import { exportForms } from "../accounts/auth-json.ts";
import { TokenCipher } from "../accounts/crypto.ts";
import { AccountRepository } from "../accounts/repository.ts";
import { accountViews } from "../accounts/views.ts";
import { systemClock } from "../core/clock.ts";
import { randomToken, sha256Hex } from "../core/crypto.ts";
import { createLogger } from "../core/logging.ts";
import type { Action } from "../plugin-host/actions.ts";
import { ActionApplier } from "../plugin-host/apply.ts";
import { audit } from "../store/audit.ts";
import { importAuthFile } from "./accounts.ts";
import { type Command, EXIT, type Io, type Parsed } from "./args.ts";
import { iso, JSON_FLAG, printList, settingsFor, withStore } from "./context.ts";

const ID = { name: "ID" } as const;

async function statusChange(
  io: Io,
  p: Parsed,
  type: "account.pause" | "account.reactivate",
): Promise<number> {
  const id = p.args[0]!;
  return withStore(io, p, async ({ store }) => {
    const applier = new ActionApplier(store.db, createLogger("silent"));
    const action = (
      type === "account.pause"
        ? { type, accountId: id }
        : { type, accountId: id, reason: "Reactivated by operator (codex-lb accounts resume)" }
    ) as Action;
    const [r] = await applier.apply([action], { source: "cli" });
    if (r?.status === "missing") {
      io.stderr.write(`codex-lb: no account ${JSON.stringify(id)}\n`);
      return EXIT.failure;
    }
    if (r?.status === "not_applicable") {
      const hint = r.fromStatus === "reauth_required" ? " (log in again: codex-lb accounts import FILE)" : "";
      io.stderr.write(`codex-lb: account ${id} is ${r.fromStatus}; cannot ${type.slice(8)} it${hint}\n`);
      return EXIT.failure;
    }
    if (r?.status === "stale") {
      io.stderr.write(`codex-lb: account ${id} changed meanwhile; try again\n`);
      return EXIT.failure;
    }
    await audit(store.db, { action: type, details: { accountId: id, via: "cli" } });
    io.stdout.write(`account ${id}: ${r?.fromStatus ?? "?"} -> ${r?.toStatus ?? r?.fromStatus ?? "?"}\n`);
    return EXIT.ok;
  });
}

export const accountsCommand: Command = {
  name: "accounts",
  summary: "list, import, export, pause, resume or remove accounts",
  subcommands: [
    {
      name: "list",
      summary: "every account with its status and quota windows",
      flags: [JSON_FLAG],
      async run(p, io) {
        return withStore(io, p, async ({ store }) => {
          const views = await accountViews(store.db, undefined, undefined, systemClock.now());
          printList(
            io,
            p.flags.json === true,
            { items: views },
            views.map((a) => [
              a.id,
              a.email ?? "-",
              a.planType ?? "-",
              a.status,
              a.health.usable ? "yes" : "no",
              a.usage.primary ? `${a.usage.primary.usedPercent}%` : "-",
              a.usage.secondary ? `${a.usage.secondary.usedPercent}%` : "-",
              iso(a.resetAt),
            ]),
            ["ID", "EMAIL", "PLAN", "STATUS", "USABLE", "PRIMARY", "SECONDARY", "RESET"],
          );
          return EXIT.ok;
        });
      },
    },
    {
      name: "import",
      summary: "add (or update) the account of a Codex CLI auth.json",
      args: [{ name: "FILE", complete: "file" }],
      async run(p, io) {
        const { settings, location } = await settingsFor(io, p);
        return importAuthFile(p.args[0]!, settings, location, io.stdout, io.stderr);
      },
    },
    {
      name: "export",
      summary: "write an account's tokens as a Codex CLI auth.json (mode 0600)",
      description:
        "Writes to --out FILE (created with mode 0600) or, without it, to stdout. The file holds live tokens.",
      flags: [{ name: "out", short: "o", value: "FILE", help: "write to FILE instead of stdout" }],
      args: [ID],
      async run(p, io) {
        const id = p.args[0]!;
        return withStore(io, p, async ({ store, settings }) => {
          const repo = new AccountRepository(store.db, TokenCipher.forDataDir(settings.dataDir));
          const [view] = await accountViews(store.db, id, undefined, systemClock.now());
          const creds = view ? await repo.credentials(id) : null;
          if (!view || !creds) {
            io.stderr.write(
              `codex-lb: ${view ? `account ${id} holds no tokens` : `no account ${JSON.stringify(id)}`}\n`,
            );
            return EXIT.failure;
          }
          const forms = exportForms({
            id,
            email: view.email,
            chatgptAccountId: creds.chatgptAccountId,
            tokens: creds,
            lastRefreshAt: creds.lastRefreshAt,
            now: systemClock.now(),
          });
          const text = `${JSON.stringify(forms.codexAuthJson, null, 2)}\n`;
          await audit(store.db, { action: "account.export", details: { accountId: id, via: "cli" } });
          if (typeof p.flags.out === "string") {
            writeFileSync(p.flags.out, text, { mode: 0o600 });
            io.stderr.write(`codex-lb: wrote ${p.flags.out}\n`);
          } else io.stdout.write(text);
          return EXIT.ok;
        });
      },
    },
    {
      name: "pause",
      summary: "take an account out of rotation until resumed",
      args: [ID],
      run: (p, io) => statusChange(io, p, "account.pause"),
    },
    {
      name: "resume",
      summary: "put a paused (or deactivated) account back in rotation",
      args: [ID],
      run: (p, io) => statusChange(io, p, "account.reactivate"),
    },
    {
      name: "remove",
      summary: "delete an account with its tokens, events and usage history",
      args: [ID],
      async run(p, io) {
        const id = p.args[0]!;
        return withStore(io, p, async ({ store, settings }) => {
          const repo = new AccountRepository(store.db, TokenCipher.forDataDir(settings.dataDir));
          if (!(await repo.delete(id))) {
            io.stderr.write(`codex-lb: no account ${JSON.stringify(id)}\n`);
            return EXIT.failure;
          }
          await audit(store.db, { action: "account.delete", details: { accountId: id, via: "cli" } });
          io.stdout.write(`removed account ${id}\n`);
          return EXIT.ok;
        });
      },
    },
  ],
};

export const keysCommand: Command = {
  name: "keys",
  summary: "list, create or revoke the gateway's API keys",
  subcommands: [
    {
      name: "list",
      summary: "every API key (prefix only, never the key)",
      flags: [JSON_FLAG],
      async run(p, io) {
        return withStore(io, p, async ({ store }) => {
          const keys = await listApiKeys(store.db);
          printList(
            io,
            p.flags.json === true,
            {
              items: keys.map((k) => ({
                ...k,
                createdAt: iso(k.createdAt),
                updatedAt: iso(k.updatedAt),
                lastUsedAt: k.lastUsedAt === null ? null : iso(k.lastUsedAt),
                expiresAt: k.expiresAt === null ? null : iso(k.expiresAt),
              })),
            },
            keys.map((k) => [
              k.id,
              k.name,
              `${k.keyPrefix}…`,
              k.isActive ? "active" : "disabled",
              iso(k.lastUsedAt),
              k.allowedModels?.join(",") ?? "*",
            ]),
            ["ID", "NAME", "PREFIX", "STATE", "LAST USED", "MODELS"],
          );
          return EXIT.ok;
        });
      },
    },
    {
      name: "create",
      summary: "create an API key and print it (shown once, never stored)",
      flags: [
        { name: "models", value: "LIST", help: "comma-separated models the key may use (default: all)" },
        JSON_FLAG,
      ],
      args: [{ name: "NAME" }],
      async run(p, io) {
        const name = p.args[0]!.trim();
        if (name === "" || name.length > 200) {
          io.stderr.write("codex-lb: NAME must be 1 to 200 characters\n");
          return EXIT.usage;
        }
        const models =
          typeof p.flags.models === "string"
            ? p.flags.models
                .split(",")
                .map((m) => m.trim())
                .filter((m) => m !== "")
            : null;
        return withStore(io, p, async ({ store }) => {
          const { record, key } = await createApiKey(
            store.db,
            { name, allowedModels: models },
            systemClock.now(),
          );
          await audit(store.db, { action: "api_key.created", details: { apiKeyId: record.id, via: "cli" } });
          if (p.flags.json === true)
            io.stdout.write(`${JSON.stringify({ id: record.id, name, key }, null, 2)}\n`);
          else io.stdout.write(`created key ${record.id} (${name})\n${key}\n`);
          return EXIT.ok;
        });
      },
    },
    {
      name: "revoke",
      summary: "delete an API key; clients using it are refused from then on",
      args: [ID],
      async run(p, io) {
        const id = p.args[0]!;
        return withStore(io, p, async ({ store }) => {
          if (!(await deleteApiKey(store.db, id))) {
            io.stderr.write(`codex-lb: no API key ${JSON.stringify(id)}\n`);
            return EXIT.failure;
          }
          await audit(store.db, { action: "api_key.deleted", details: { apiKeyId: id, via: "cli" } });
          io.stdout.write(`revoked key ${id}\n`);
          return EXIT.ok;
        });
      },
    },
  ],
};

export const adminCommand: Command = {
  name: "admin",
  summary: "admin login recovery",
  subcommands: [
    {
      name: "reset-password",
      summary: "forget the admin password and TOTP, end every admin session, print a bootstrap token",
      description:
        "Works on the store directly, so only someone with access to this machine's data dir can run it.\n" +
        "Then set a new password: POST /api/auth/password with {newPassword, bootstrapToken} (the token is\n" +
        "needed from another machine; from this machine the password alone is enough).",
      flags: [JSON_FLAG],
      async run(p, io) {
        return withStore(io, p, async ({ store }) => {
          const token = randomToken(24);
          const hash = await sha256Hex(token);
          await store.db.transaction().execute(async (tx) => {
            await writeCredentials(
              tx,
              {
                password_hash: null,
                totp_secret: null,
                totp_pending_secret: null,
                totp_last_step: null,
                recovery_codes: null,
                bootstrap_token_hash: hash,
              },
              systemClock.now(),
            );
            await tx.deleteFrom("admin_sessions").execute();
            await audit(tx, { action: "admin.password_reset", details: { via: "cli" } });
          });
          if (p.flags.json === true) io.stdout.write(`${JSON.stringify({ bootstrapToken: token })}\n`);
          else
            io.stdout.write(
              `admin password, TOTP and sessions cleared\nbootstrap token: ${token}\n` +
                'set a new password: POST /api/auth/password with {"newPassword": "…", "bootstrapToken": "…"}\n',
            );
          return EXIT.ok;
        });
      },
    },
  ],
};
