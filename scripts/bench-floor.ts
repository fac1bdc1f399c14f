/**
 * `bun scripts/bench-floor.ts`: how low can a gateway that does what codex-lb must do per request
 * go, and what does each piece cost? A ladder of minimal gateways, each one file of `Bun.serve`
 * (no codex-lb code on their request path), in front of the fake upstream of `bun run bench`, each rung adding one piece
 * of codex-lb's per-request work, done for real:
 *
 * - L0 `bun run bench`'s bare pass-through (hands the upstream body to `Response`);
 * - L1 + the upstream body relayed through JS: each chunk read and written to a Bun `direct`
 *   ReadableStream, flushed per chunk (as `src/runtime/bun/push-stream.ts` does);
 * - L2 + SSE event boundaries found in the bytes (whole events only go out; a partial one waits for
 *   the next chunk) and only `response.completed` JSON-parsed, for its usage;
 * - L3 + the request body read as text and JSON-checked, the members the Codex backend needs
 *   (`store`, `stream`, `instructions`) spliced in when absent and the text encoded once (as
 *   codex-lb must for the bench's short body), the `Authorization` key checked against an
 *   in-memory map of SHA-256 hashes (cached per presented key), a request id (UUIDv7), an account
 *   picked and its stream counted, upstream headers built from the client's (dropped / persona /
 *   kept: a subset of `src/upstream/headers.ts`'s rules, without its true-client-ip and request-id
 *   handling or its dropped / persona prefixes), the upstream call aborted when the client goes
 *   away or sends no headers in time (an AbortSignal and a timer), and an idle deadline on its
 *   stream;
 * - L4 + a durable reservation on a real SQLite file (WAL, synchronous=NORMAL, foreign keys on):
 *   the key's daily limit checked and the hold inserted in one `BEGIN IMMEDIATE` group commit per
 *   event-loop turn, committed BEFORE the request is forwarded; the hold settled with the real usage
 *   after the stream (same group commit); the request-log row inserted with a prepared statement in
 *   batches (250 ms or 200 rows), deleting its reservation in the same transaction. The log table
 *   is codex-lb's own, made by its migrations (see `RESERVATIONS`): its columns, its 8 indexes, the
 *   per-key hour-bucket trigger and the response-owner upsert trigger (the fake upstream's response id, the same for
 *   every request, as codex-lb sees it in the same run);
 * - L5 codex-lb itself (`bun scripts/bench.ts gateway`, as `bun run bench` runs it).
 *
 * The same method as `bun run bench` (its load generator, scripts/bench-proc.ts): CPU µs per
 * request of each gateway process from /proc at 64 and 1 connections, and the p50 added over the
 * direct path at 1 connection; `FLOOR_ROUNDS` rounds (default 5) of `FLOOR_SECONDS` (default 2) per
 * cell, the rungs' order reversed every other round. Before measuring, every rung's answer is
 * checked byte for byte against the upstream's own. 127.0.0.1 only.
 *
 * Roles: `bun scripts/bench-floor.ts` (the run), `bun scripts/bench-floor.ts rung <1-4> <upstream>
 * [dataDir]` (one rung; L4 needs the data dir).
 *
 * @module
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openMigratedStore } from "../src/store/store.ts";
import { envNumber } from "./bench-env.ts";
import { type Cell, type Listening, load, median, processGroup, spread, table } from "./bench-proc.ts";
import { SHORT_BODY } from "./bench-servers.ts";

const BENCH = join(import.meta.dir, "bench.ts");
const CODEX_PATH = "/backend-api/codex/responses";
const LF = 0x0a;

// ---------------------------------------------------------------------------------------------
// L1: the upstream body relayed through JS

/** What a relay does with the upstream's bytes: what to send on (L2: whole events only). */
interface ByteStep {
  push(chunk: Uint8Array): Uint8Array;
}

/**
 * The client body: each upstream chunk read, passed through `step` (none: as it came), written to a
 * Bun `direct` stream and flushed, waiting when the client is slow; `done(ok)` once the upstream
 * body ended (true) or failed / the client went away (false). With `idleMs` > 0 (L3 on), an
 * upstream silent that long is cut off: one timer per stream, set again for what is left when it
 * fires early, not moved per chunk.
 */
function relay(
  upstream: ReadableStream<Uint8Array>,
  step: ByteStep | null,
  done: (ok: boolean) => void,
  idleMs = 0,
): ReadableStream<Uint8Array> {
  const reader = upstream.getReader();
  let finished = false;
  let lastChunk = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = () => {
    const waited = performance.now() - lastChunk;
    if (waited < idleMs) timer = setTimeout(tick, idleMs - waited);
    else reader.cancel(new Error("upstream idle")).catch(() => {});
  };
  const finish = (ok: boolean) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done(ok);
  };
  const source: Bun.DirectUnderlyingSource<Uint8Array> = {
    type: "direct",
    async pull(c: ReadableStreamDirectController) {
      if (idleMs > 0) {
        lastChunk = performance.now();
        timer = setTimeout(tick, idleMs);
      }
      try {
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          if (idleMs > 0) lastChunk = performance.now();
          const out = step ? step.push(r.value) : r.value;
          if (out.length === 0) continue;
          c.write(out);
          const full = c.flush();
          if (full instanceof Promise) await full;
        }
      } catch (e) {
        if (!finished) c.close(e instanceof Error ? e : new Error(String(e)));
        finish(false);
        return;
      }
      // Cancelled (the client went away): the body is closed already.
      if (finished) return;
      c.close();
      finish(true);
    },
    cancel() {
      reader.cancel().catch(() => {}); // an upstream body already failed rejects
      finish(false);
    },
  };
  return new ReadableStream(source as unknown as UnderlyingDefaultSource<Uint8Array>);
}

// ---------------------------------------------------------------------------------------------
// L2: SSE event boundaries, `response.completed` parsed

const COMPLETED = new TextEncoder().encode("event: response.completed\n");
const decoder = new TextDecoder();

interface Usage {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  responseId: string | null;
}

function startsWith(data: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (at + prefix.length > data.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[at + i] !== prefix[i]) return false;
  return true;
}

const count = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * Sends on whole events only (a partial one waits for the next chunk: a gateway that may rewrite an
 * event must see it whole) and reads `response.completed`'s usage; every other event passes as
 * bytes, unparsed.
 */
class EventScanner implements ByteStep {
  #carry: Uint8Array | null = null;
  usage: Usage | null = null;

  push(chunk: Uint8Array): Uint8Array {
    let data = chunk;
    if (this.#carry) {
      data = new Uint8Array(this.#carry.length + chunk.length);
      data.set(this.#carry);
      data.set(chunk, this.#carry.length);
      this.#carry = null;
    }
    let pos = 0;
    for (;;) {
      // The event ends at its blank line: a line feed followed by another.
      let end = data.indexOf(LF, pos);
      while (end >= 0 && data[end + 1] !== LF) end = data.indexOf(LF, end + 1);
      if (end < 0 || end + 1 >= data.length) break;
      if (startsWith(data, pos, COMPLETED)) this.#completed(data.subarray(pos + COMPLETED.length, end));
      pos = end + 2;
    }
    if (pos < data.length) this.#carry = data.slice(pos);
    return pos === data.length ? data : data.subarray(0, pos);
  }

  /** The `data: {json}` line of `response.completed`. */
  #completed(line: Uint8Array): void {
    const text = decoder.decode(line);
    if (!text.startsWith("data: ")) return;
    const ev = JSON.parse(text.slice(6)) as { response?: { id?: unknown; usage?: Record<string, unknown> } };
    const u = ev.response?.usage;
    if (!u) return;
    this.usage = {
      inputTokens: count(u.input_tokens),
      cachedInputTokens: count(
        (u.input_tokens_details as Record<string, unknown> | undefined)?.cached_tokens,
      ),
      outputTokens: count(u.output_tokens),
      responseId: typeof ev.response?.id === "string" ? ev.response.id : null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// L3: key, body, upstream headers

interface KeyRecord {
  readonly id: string;
  readonly active: boolean;
  readonly expiresAt: number | null;
  /** Daily total-token limit. */
  readonly dailyTokens: number;
}

/** API keys by SHA-256 hash, and what each presented key resolved to (no hash per request). */
class Keys {
  readonly #byHash = new Map<string, KeyRecord>();
  readonly #presented = new Map<string, { key: KeyRecord; at: number }>();

  add(plain: string, key: KeyRecord): void {
    this.#byHash.set(new Bun.CryptoHasher("sha256").update(plain).digest("hex"), key);
  }

  /** The key an `Authorization` header presents, if valid now. */
  check(authorization: string | null, now: number): KeyRecord | null {
    if (!authorization?.startsWith("Bearer ")) return null;
    const plain = authorization.slice(7);
    let e = this.#presented.get(plain);
    if (!e || now - e.at > 60_000) {
      const key = this.#byHash.get(new Bun.CryptoHasher("sha256").update(plain).digest("hex"));
      if (!key) return null;
      e = { key, at: now };
      if (this.#presented.size >= 10_000) this.#presented.clear();
      this.#presented.set(plain, e);
    }
    const k = e.key;
    return k.active && (k.expiresAt === null || k.expiresAt > now) ? k : null;
  }
}

interface Account {
  readonly id: string;
  readonly authorization: string;
  readonly chatgptAccountId: string;
  readonly installationId: string;
  streams: number;
  readonly maxStreams: number;
}

const DROPPED = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "x-api-key",
  "chatgpt-account-id",
  "x-codex-installation-id",
  "content-length",
  "content-type",
  "accept",
  "accept-encoding",
  "host",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "forwarded",
  "x-real-ip",
  "via",
  "x-request-id",
]);
const PERSONA = new Set(["user-agent", "originator", "version", "openai-organization", "openai-project"]);
const fates = new Map<string, number>();
function fateOf(name: string): number {
  let f = fates.get(name);
  if (f === undefined) {
    f = DROPPED.has(name) || name.startsWith("x-forwarded-") ? 0 : PERSONA.has(name) ? 1 : 2;
    if (fates.size >= 1024) fates.clear();
    fates.set(name, f);
  }
  return f;
}

/** A non-Codex client's upstream headers: its own kept ones, the Codex persona, the account's credentials. */
function upstreamHeaders(client: Headers, account: Account, requestId: string): Headers {
  const out = new Headers();
  client.forEach((value, name) => {
    if (fateOf(name) === 2) out.set(name, value);
  });
  out.set("user-agent", "codex_cli_rs/0.171.0 (Linux 6.8.0; x86_64) codex-lb");
  out.set("originator", "codex_cli_rs");
  out.set("version", "0.171.0");
  out.set("authorization", account.authorization);
  out.set("chatgpt-account-id", account.chatgptAccountId);
  out.set("x-codex-installation-id", account.installationId);
  out.set("x-request-id", requestId);
  out.set("accept", "text/event-stream");
  out.set("content-type", "application/json");
  return out;
}

/** The request fields the gateway reads; null when the body is not a Responses request. */
function readBody(
  text: string,
): { body: Record<string, unknown>; model: string; maxOutputTokens: number | null } | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || !(typeof b.input === "string" || Array.isArray(b.input))) return null;
  const max = b.max_output_tokens;
  return { body: b, model: b.model, maxOutputTokens: typeof max === "number" && max > 0 ? max : null };
}

const ADDED_MEMBERS = ',"store":false,"stream":true,"instructions":""}';
const encoder = new TextEncoder();

/**
 * The upstream body: the Codex backend wants `store: false`, `stream: true` and a string
 * `instructions`, which codex-lb's `toUpstreamPayload` (src/proxy/payload.ts) sets. A body that has
 * them goes as the client's text; one that has none of them (the bench's short body) gets them
 * spliced in before its closing brace; else the body is serialised again with them set. A changed
 * text is encoded to UTF-8 once here, as codex-lb's `upstreamBody` does. (codex-lb's other
 * rewrites, system messages hoisted into `instructions` and fields stripped, are not modelled.)
 */
function upstreamBody(text: string, b: Record<string, unknown>): string | Uint8Array<ArrayBuffer> {
  if (b.store === false && b.stream === true && typeof b.instructions === "string") return text;
  if (!("store" in b || "stream" in b || "instructions" in b))
    return encoder.encode(text.slice(0, text.lastIndexOf("}")) + ADDED_MEMBERS);
  const instructions = typeof b.instructions === "string" ? b.instructions : "";
  return encoder.encode(JSON.stringify({ ...b, store: false, stream: true, instructions }));
}

// ---------------------------------------------------------------------------------------------
// L4: the durable store

/** A hold's reservation (its primary key) and estimate. */
interface Hold {
  readonly keyId: string;
  readonly createdAt: number;
  readonly id: string;
  readonly requestId: string;
  readonly model: string;
  readonly estimate: number;
}

interface LogRow {
  readonly hold: Hold;
  readonly accountId: string;
  readonly status: number;
  readonly latencyMs: number;
  readonly usage: Usage | null;
}

const DAY_MS = 86_400_000;
const tokensOf = (u: Usage | null) => (u ? u.inputTokens + u.outputTokens : 0);
const costOf = (u: Usage | null) =>
  u
    ? (u.inputTokens - u.cachedInputTokens) * 1.25e-6 + u.cachedInputTokens * 0.125e-6 + u.outputTokens * 1e-5
    : 0;

/**
 * L4's file is made by codex-lb's own migrations (src/store/migrations, run by `openMigratedStore`
 * before the rung serves), so its request-log row costs what codex-lb's does and cannot drift from
 * it: the same columns, the same 8 indexes, the per-key hour-bucket trigger and the response-owner
 * upsert trigger, foreign keys on. Only set-up uses codex-lb code; the rung's request path is its
 * own. Added here: L4's own reservation table (the shape of codex-lb's, minimal).
 */
const RESERVATIONS = [
  // the shape of 0095 / 0098's reservations, by key and time
  `CREATE TABLE IF NOT EXISTS reservations (
    api_key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE, created_at INTEGER NOT NULL,
    id TEXT NOT NULL, request_id TEXT NOT NULL, model TEXT NOT NULL, settled INTEGER NOT NULL,
    tokens INTEGER NOT NULL, PRIMARY KEY (api_key_id, created_at, id)) WITHOUT ROWID`,
];

/**
 * Reservations and request logs on one SQLite connection. Holds and settles asked for in one
 * event-loop turn are written in one `BEGIN IMMEDIATE` transaction (a hold's promise settles once it
 * is committed); the key's daily usage (logged + held) is kept in memory between batches and read
 * again from the tables whenever another connection has written (`PRAGMA data_version`).
 */
class Store {
  readonly #db: Database;
  readonly #q;
  #holds: { key: KeyRecord; hold: Hold; done: (ok: boolean) => void; fail: (e: unknown) => void }[] = [];
  #settles: { hold: Hold; tokens: number }[] = [];
  #scheduled = false;
  #rows: LogRow[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #version = -1;
  /** Per key: tokens logged in today's window, tokens held by reservations, requests in flight. */
  readonly #usage = new Map<string, { day: number; logged: number; held: number; inFlight: number }>();

  /** The file migrated by codex-lb's own migrations first (see {@link RESERVATIONS}). */
  static async open(file: string): Promise<Store> {
    const migrated = await openMigratedStore({ kind: "sqlite", path: file });
    await migrated.close();
    return new Store(file);
  }

  private constructor(file: string) {
    const db = new Database(file, { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA foreign_keys = ON"); // as src/runtime/bun/sqlite.ts
    for (const stmt of RESERVATIONS) db.exec(stmt);
    // The foreign keys' targets, with the columns codex-lb's schema requires.
    db.exec(
      "INSERT OR IGNORE INTO api_keys (id, name, key_hash, key_prefix, created_at, updated_at) VALUES ('key1', 'floor', 'h', 'p', 0, 0)",
    );
    db.exec(
      "INSERT OR IGNORE INTO accounts (id, codex_installation_id, created_at, updated_at) VALUES ('acct1', 'i', 0, 0)",
    );
    this.#db = db;
    this.#q = {
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      rollback: db.prepare("ROLLBACK"),
      version: db.prepare<{ data_version: number }, []>("PRAGMA data_version"),
      logged: db.prepare<{ t: number }, [string, number]>(
        "SELECT coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0) AS t FROM request_logs WHERE api_key_id = ? AND requested_at >= ?",
      ),
      held: db.prepare<{ t: number; f: number }, [string, number]>(
        "SELECT coalesce(sum(tokens), 0) AS t, count(*) FILTER (WHERE settled = 0) AS f FROM reservations WHERE api_key_id = ? AND created_at >= ?",
      ),
      hold: db.prepare(
        "INSERT INTO reservations (api_key_id, created_at, id, request_id, model, settled, tokens) VALUES (?, ?, ?, ?, ?, 0, ?)",
      ),
      settle: db.prepare(
        "UPDATE reservations SET settled = 1, tokens = ? WHERE api_key_id = ? AND created_at = ? AND id = ?",
      ),
      release: db.prepare("DELETE FROM reservations WHERE api_key_id = ? AND created_at = ? AND id = ?"),
      // Every column of codex-lb's row (src/proxy/log-row.ts), the ones L4 does not know null.
      log: db.prepare(
        `INSERT INTO request_logs (requested_at, request_id, account_id, api_key_id, model, endpoint, client,
          client_ip, status, http_status, error_code, error_message, input_tokens, cached_input_tokens,
          output_tokens, reasoning_tokens, cost_usd, latency_ms, ttfb_ms, queue_ms, response_id, session_key,
          reasoning_effort, transport, upstream_transport, kind)
         VALUES (?, ?, ?, ?, ?, '${CODEX_PATH}', NULL, '127.0.0.1', ?, ?, NULL, NULL, ?, ?, ?, NULL, ?, ?, NULL,
          NULL, ?, NULL, NULL, 'http', 'http', 'response')`,
      ),
    };
  }

  /**
   * Reserves `hold` on `key`: true once committed, false when the key's daily limit refuses it;
   * rejects when its batch's transaction failed.
   */
  hold(key: KeyRecord, hold: Hold): Promise<boolean> {
    return new Promise((done, fail) => {
      this.#holds.push({ key, hold, done, fail });
      this.#schedule();
    });
  }

  /** The request is over: its reservation holds its real usage (next batch), its log row is queued. */
  finish(row: LogRow): void {
    this.#settles.push({ hold: row.hold, tokens: tokensOf(row.usage) });
    this.#schedule();
    this.#rows.push(row);
    if (this.#rows.length >= 200) setImmediate(() => this.flush());
    else this.#timer ??= setTimeout(() => this.flush(), 250);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#batch());
  }

  /** The key's figures for today, read from the tables when not known. */
  #figures(keyId: string, now: number) {
    const day = now - (now % DAY_MS);
    let u = this.#usage.get(keyId);
    if (!u || u.day !== day) {
      const held = this.#q.held.get(keyId, day)!;
      u = { day, logged: this.#q.logged.get(keyId, day)!.t, held: held.t, inFlight: held.f };
      this.#usage.set(keyId, u);
    }
    return u;
  }

  /** In a transaction: forgets the figures when another connection has committed since our last one. */
  #checkVersion(): void {
    const v = this.#q.version.get()!.data_version;
    if (v !== this.#version) this.#usage.clear();
    this.#version = v;
  }

  #tx(body: () => void): void {
    this.#q.begin.run();
    try {
      body();
      this.#q.commit.run();
    } catch (e) {
      this.#q.rollback.run();
      this.#usage.clear();
      throw e;
    }
  }

  #batch(): void {
    this.#scheduled = false;
    const holds = this.#holds;
    const settles = this.#settles;
    if (holds.length === 0 && settles.length === 0) return;
    this.#holds = [];
    this.#settles = [];
    const admitted: boolean[] = [];
    try {
      this.#tx(() => {
        this.#checkVersion();
        for (const s of settles) {
          this.#q.settle.run(s.tokens, s.hold.keyId, s.hold.createdAt, s.hold.id);
          const u = this.#figures(s.hold.keyId, s.hold.createdAt);
          u.held += s.tokens - s.hold.estimate;
          u.inFlight--;
        }
        for (const { key, hold } of holds) {
          const u = this.#figures(key.id, hold.createdAt);
          const used = u.logged + u.held;
          const ok = used < key.dailyTokens && !(u.inFlight > 0 && used + hold.estimate > key.dailyTokens);
          admitted.push(ok);
          if (!ok) continue;
          this.#q.hold.run(hold.keyId, hold.createdAt, hold.id, hold.requestId, hold.model, hold.estimate);
          u.held += hold.estimate;
          u.inFlight++;
        }
      });
    } catch (e) {
      // Rolled back: no hold of this batch is written (the waiting requests fail), and the settles'
      // reservations keep their estimates until their log rows delete them.
      for (const h of holds) h.fail(e);
      return;
    }
    for (let i = 0; i < holds.length; i++) holds[i]!.done(admitted[i]!);
  }

  /** Writes the queued log rows and deletes their reservations, in one transaction. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    // Settles still waiting for their batch go first: the rows' reservations are settled by then.
    this.#batch();
    const rows = this.#rows.splice(0, 200);
    if (rows.length === 0) return;
    this.#tx(() => {
      this.#checkVersion();
      for (const r of rows) {
        const u = r.usage;
        const tokens = tokensOf(u);
        this.#q.log.run(
          r.hold.createdAt,
          r.hold.requestId,
          r.accountId,
          r.hold.keyId,
          r.hold.model,
          r.status >= 200 && r.status < 300 ? "success" : r.status === 499 ? "cancelled" : "error",
          r.status,
          u?.inputTokens ?? null,
          u?.cachedInputTokens ?? null,
          u?.outputTokens ?? null,
          u ? costOf(u) : null,
          r.latencyMs,
          u?.responseId ?? null,
        );
        this.#q.release.run(r.hold.keyId, r.hold.createdAt, r.hold.id);
        const f = this.#figures(r.hold.keyId, r.hold.createdAt);
        f.logged += tokens;
        f.held -= tokens;
      }
    });
    if (this.#rows.length > 0) this.flush();
  }

  close(): void {
    this.flush();
    this.#db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// A rung

/** How long the upstream may take to send its headers, and stay silent mid-stream (L3 on). */
const HEADERS_MS = 30_000;
const IDLE_MS = 300_000;
const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};
const errorResponse = (status: number, type: string, message: string) =>
  Response.json({ error: { type, message } }, { status });

/** Serves rung `level` (1–4) in front of `upstream`; prints `PORT` (and, from L3 on, `KEY`). */
async function serveRung(level: number, upstream: string, dataDir: string | undefined): Promise<void> {
  const target = `${upstream}${CODEX_PATH}`;
  const plainKey = `sk-clb-${crypto.randomUUID().replaceAll("-", "")}`;
  const keys = new Keys();
  keys.add(plainKey, { id: "key1", active: true, expiresAt: null, dailyTokens: 1e15 });
  const account: Account = {
    id: "acct1",
    authorization: `Bearer ${"t".repeat(900)}`,
    chatgptAccountId: "chatgpt-acct1",
    installationId: "00000000-0000-4000-8000-000000000000",
    streams: 0,
    maxStreams: 1_000_000,
  };
  if (level >= 4 && !dataDir) throw new Error("L4 needs a data dir");
  const store = level >= 4 ? await Store.open(join(dataDir!, "floor.db")) : null;

  /** L1/L2: the client's body forwarded as it is, the answer relayed (L2: scanned). */
  const relayOnly = async (req: Request) => {
    const res = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: await req.text(),
    });
    const step = level >= 2 ? new EventScanner() : null;
    return new Response(
      relay(res.body!, step, () => {}),
      { status: res.status, headers: SSE_HEADERS },
    );
  };

  /** L3/L4: admission, body, (L4: the hold), headers, forward, relay, (L4: settle and log). */
  const gateway = async (req: Request) => {
    const started = Date.now();
    const key = keys.check(req.headers.get("authorization"), started);
    if (!key) return errorResponse(401, "invalid_api_key", "Invalid API key");
    const text = await req.text();
    const body = readBody(text);
    if (!body) return errorResponse(400, "invalid_request_error", "Not a Responses request");
    const requestId = Bun.randomUUIDv7();
    let hold: Hold | null = null;
    if (store) {
      const estimate = Math.ceil(text.length / 4) + (body.maxOutputTokens ?? 4096);
      hold = {
        keyId: key.id,
        createdAt: started,
        id: Bun.randomUUIDv7(),
        requestId,
        model: body.model,
        estimate,
      };
      let admitted: boolean;
      try {
        admitted = await store.hold(key, hold);
      } catch {
        return errorResponse(503, "store_unavailable", "The reservation could not be written");
      }
      if (!admitted) return errorResponse(429, "rate_limit_exceeded", "API key daily limit reached");
    }
    if (account.streams >= account.maxStreams) {
      if (store && hold)
        store.finish({ hold, accountId: account.id, status: 429, latencyMs: 0, usage: null });
      return errorResponse(429, "proxy_overloaded", "No account can take the request");
    }
    account.streams++;
    const scanner = new EventScanner();
    const over = (status: number) => {
      req.signal.removeEventListener("abort", clientGone);
      account.streams--;
      if (store && hold)
        store.finish({
          hold,
          accountId: account.id,
          status,
          latencyMs: Date.now() - started,
          usage: scanner.usage,
        });
    };
    // The upstream call is aborted when the client goes away, or when no headers come in time.
    const controller = new AbortController();
    const clientGone = () => controller.abort(req.signal.reason);
    req.signal.addEventListener("abort", clientGone, { once: true });
    const deadline = setTimeout(() => controller.abort(new Error("upstream sent no headers")), HEADERS_MS);
    let res: Response;
    try {
      res = await fetch(target, {
        method: "POST",
        headers: upstreamHeaders(req.headers, account, requestId),
        body: upstreamBody(text, body.body),
        signal: controller.signal,
      });
    } catch {
      over(502);
      return errorResponse(502, "upstream_error", "The upstream could not be reached");
    } finally {
      clearTimeout(deadline);
    }
    return new Response(
      // Ended without its usage: the upstream broke off; not ended: the client went away.
      relay(res.body!, scanner, (ok) => over(!ok ? 499 : scanner.usage ? res.status : 502), IDLE_MS),
      { status: res.status, headers: { ...SSE_HEADERS, "x-request-id": requestId } },
    );
  };

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    fetch: level >= 3 ? gateway : relayOnly,
  });
  process.on("SIGTERM", () => {
    store?.close();
    process.exit(0);
  });
  if (level >= 3) console.log(`KEY ${plainKey}`);
  console.log(`PORT ${server.port}`);
}

// ---------------------------------------------------------------------------------------------
// The run

const RUNGS = [
  "L0 pass-through",
  "L1 + relay through JS",
  "L2 + SSE boundaries, usage",
  "L3 + key, body, headers, abort, timers",
  "L4 + SQLite hold, settle, log",
  "L5a codex-lb, no metrics/access lines",
  "L5 codex-lb",
] as const;
const L4 = 4;
const L5 = RUNGS.length - 1;

/** The 1, 5 and 15 minute load averages. */
const loadAverage = async () => (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");

async function main(): Promise<void> {
  const loadAtStart = await loadAverage();
  const rounds = envNumber("FLOOR_ROUNDS", 5);
  const seconds = envNumber("FLOOR_SECONDS", 2);
  const dataDir = mkdtempSync(join(tmpdir(), "codex-lb-floor-"));
  const procs = processGroup();
  const start = procs.start;
  try {
    const upstream = await start(["bun", BENCH, "upstream"]);
    const gws = [await start(["bun", BENCH, "passthrough", upstream.url])];
    for (const l of [1, 2, 3, 4])
      gws.push(await start(["bun", import.meta.path, "rung", String(l), upstream.url, dataDir]));
    // codex-lb without its optional per-request work (metrics, access lines), then as the bench runs it.
    const gateway = ["bun", BENCH, "gateway", upstream.url, "1"];
    gws.push(await start(gateway, { CODEX_LB_METRICS_ENABLED: "false", BENCH_LOG_LEVEL: "warn" }));
    gws.push(await start(gateway));
    const json = { "content-type": "application/json" };
    const headersOf = (g: Listening) => (g.key ? { ...json, authorization: `Bearer ${g.key}` } : json);
    const pids = (g: Listening | null) => ({ proxy: g?.pid ?? null, upstream: upstream.pid });
    const direct = `${upstream.url}${CODEX_PATH}`;

    // Each rung answers the upstream's own bytes (codex-lb: a 200 with `response.completed`, said below).
    const want = await (await fetch(direct, { method: "POST", headers: json, body: SHORT_BODY })).text();
    for (const [i, g] of gws.entries()) {
      const res = await fetch(`${g.url}${CODEX_PATH}`, {
        method: "POST",
        headers: headersOf(g),
        body: SHORT_BODY,
      });
      const got = await res.text();
      if (res.status !== 200 || !got.includes("response.completed"))
        throw new Error(`${RUNGS[i]}: status ${res.status}`);
      if (got !== want && i <= L4) throw new Error(`${RUNGS[i]}: answer differs from the upstream's`);
      if (i === L5) console.log(`codex-lb's answer is ${got === want ? "" : "not "}the upstream's bytes`);
    }

    // Warm-up: JIT, connection pools, the stores, the key caches.
    for (const g of gws)
      for (const c of [8, 1]) await load(`${g.url}${CODEX_PATH}`, headersOf(g), SHORT_BODY, c, 0.5, pids(g));

    const cells = new Map<string, Cell[]>();
    const put = (k: string, c: Cell) => cells.set(k, [...(cells.get(k) ?? []), c]);
    for (let r = 0; r < rounds; r++) {
      const order = gws.map((_, i) => (r % 2 === 0 ? i : L5 - i));
      for (const c of [64, 1]) {
        if (c === 1) put("direct|1", await load(direct, json, SHORT_BODY, 1, seconds, pids(null)));
        for (const i of order) {
          const g = gws[i]!;
          put(
            `${i}|${c}`,
            await load(`${g.url}${CODEX_PATH}`, headersOf(g), SHORT_BODY, c, seconds, pids(g)),
          );
        }
      }
      process.stderr.write(`round ${r + 1}/${rounds} done\n`);
    }

    const cpu = (i: number, c: number) => cells.get(`${i}|${c}`)!.map((x) => x.proxyUs!);
    const directP50 = median(cells.get("direct|1")!.map((x) => x.p50));
    const added = (i: number) => cells.get(`${i}|1`)!.map((x) => x.p50 - directP50);
    const perRound = (a: number[], b: number[], f: (x: number, y: number) => number) =>
      a.map((x, k) => f(x, b[k]!));
    const rows = [
      [
        "rung",
        "c64 CPU µs/req",
        "÷ L0 (c64)",
        "step µs (c64)",
        "c1 CPU µs/req",
        "c1 added p50 ms",
        "step ms (c1 p50)",
        "c64 req/s",
        "errors",
      ],
    ];
    for (let i = 0; i < RUNGS.length; i++) {
      const errors = [64, 1].reduce(
        (s, c) => s + cells.get(`${i}|${c}`)!.reduce((t, x) => t + x.errors, 0),
        0,
      );
      rows.push([
        RUNGS[i]!,
        spread(cpu(i, 64)),
        i === 0
          ? "1"
          : `${spread(
              perRound(cpu(i, 64), cpu(0, 64), (x, y) => x / y),
              2,
            )}×`,
        i === 0 ? "-" : spread(perRound(cpu(i, 64), cpu(i - 1, 64), (x, y) => x - y)),
        spread(cpu(i, 1)),
        spread(added(i), 3),
        i === 0
          ? "-"
          : spread(
              perRound(added(i), added(i - 1), (x, y) => x - y),
              3,
            ),
        spread(cells.get(`${i}|64`)!.map((x) => x.rps)),
        String(errors),
      ]);
    }
    console.log(table(rows));
    const l4 = median(perRound(cpu(L4, 64), cpu(0, 64), (x, y) => x / y));
    const l5 = median(perRound(cpu(L5, 64), cpu(0, 64), (x, y) => x / y));
    const beyondL4 = (i: number) => spread(perRound(cpu(i, 64), cpu(L4, 64), (x, y) => x - y));
    console.log(
      `\nFloor (L4 ÷ L0, c64): ${l4.toFixed(2)}× against the ≤ 3× target; codex-lb (L5) ${l5.toFixed(2)}×. ` +
        `Beyond L4 at c64 (µs/req, median (min–max) of the rounds): L5 − L4 ${beyondL4(L5)}, L5a − L4 ${beyondL4(L5 - 1)}. ` +
        `c1 added p50: L4 ${median(added(L4)).toFixed(3)} ms, L5 ${median(added(L5)).toFixed(3)} ms (target ≤ 0.15).`,
    );
    console.log(
      `${rounds} rounds × ${seconds} s per cell; direct p50 at c1 ${directP50.toFixed(3)} ms; load average at the start ${loadAtStart}, at the end ${await loadAverage()}`,
    );
  } finally {
    try {
      await procs.stop();
      const l4 = join(dataDir, "floor.db");
      // Reported, not thrown: an error here must not hide the run's own.
      if (await Bun.file(l4).exists()) {
        // What L4 wrote: its requests' log rows (and their owners), no reservation left once every row was written.
        const db = new Database(l4, { readonly: true });
        try {
          const n = (table: string) =>
            db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
          console.log(
            `L4's store after the run: ${n("request_logs")} request-log rows, ${n("response_owners")} response owners, ${n("reservations")} reservations left`,
          );
        } finally {
          db.close();
        }
      }
    } catch (e) {
      console.error(`L4's store could not be read after the run: ${e instanceof Error ? e.message : e}`);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

const role = process.argv[2];
if (role === "rung") await serveRung(Number(process.argv[3]), process.argv[4]!, process.argv[5]);
else await main();
