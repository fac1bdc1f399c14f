/**
 * The PostgreSQL side of the store: Kysely's own `PostgresDialect` over node-postgres (`pg`).
 *
 * Why `pg`: it is pure JavaScript (bundles into `bun build --compile` with nothing beside the
 * binary), it is the client Kysely's built-in dialect is written for (no third-party dialect), it
 * has per-pool type parsers (so counts and sums come back as numbers, as they do from SQLite), and
 * it supports LISTEN/NOTIFY on a dedicated connection, which the cluster's cache invalidation uses.
 * Bun's built-in SQL client has none of the last two.
 *
 * @module
 */
import { type Dialect, PostgresDialect } from "kysely";
import type pg from "pg";
import { type Clock, systemClock, type TimerHandle } from "../core/clock.ts";
// node-postgres is loaded on first use (a gateway on SQLite never loads it).
import { loadPg } from "../runtime/bun/pg.ts";

/** int8 (counts, sums of integers, bigint columns: millisecond times) and numeric → number. */
const NUMERIC_OIDS = new Set([20, 1700]);
const toNumber = (v: string) => Number(v);

export const pgTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    NUMERIC_OIDS.has(oid)
      ? toNumber
      : loadPg().types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PostgresHandle {
  readonly dialect: Dialect;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/** Where the store reports a lost connection (the gateway's logger; a CLI command passes none). */
export interface StoreLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Lost connections of one database, reported once per outage: the first loss is logged with the
 * cause, later ones are not until a new connection opens (then that is logged, and the next loss is
 * reported again). A server going away drops every pooled connection at once: one line, not ten.
 */
function outageReport(store: string, log: StoreLog | undefined) {
  let down = false;
  return {
    lost(err: unknown) {
      if (down) return;
      down = true;
      log?.warn(
        { store, err: err instanceof Error ? err.message : String(err) },
        "PostgreSQL connection lost; the statements on it fail, later ones open a new connection",
      );
    },
    opened() {
      if (!down) return;
      down = false;
      log?.info({ store }, "PostgreSQL connection open again");
    },
  };
}

/** A pool on `url`; connections are opened lazily. `log`: where lost connections are reported. */
export function openPostgres(
  url: string,
  opts: { maxConnections?: number; log?: StoreLog } = {},
): PostgresHandle {
  const pool = new (loadPg().Pool)({
    connectionString: url,
    max: opts.maxConnections ?? 10,
    types: pgTypes,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    application_name: "codex-lb",
  });
  const outage = outageReport(redactUrl(url), opts.log);
  // A lost connection (server restart, failover, crash) must not crash the process, and the next
  // statement must open a new one. An idle connection: the pool discards it and emits `error`. A
  // connection in use (the pool's own listener is off while it is checked out): node-postgres emits
  // `error` on the client, an uncaught exception without a listener; its statements then fail with
  // "not queryable", Kysely releases it and the pool discards it.
  pool.on("error", outage.lost);
  pool.on("connect", (client) => {
    client.on("error", outage.lost);
    outage.opened();
  });
  return {
    dialect: new PostgresDialect({ pool }),
    pool,
    // Kysely's destroy ends the pool.
    close: async () => {},
  };
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://(unparsable)";
  }
}

/** A single connection outside the pool (LISTEN, advisory locks held for a session). */
export function connectPostgres(url: string): pg.Client {
  const client = new (loadPg().Client)({
    connectionString: url,
    types: pgTypes,
    application_name: "codex-lb",
  });
  client.on("error", () => {});
  return client;
}

/** Messages between processes sharing the database (PostgreSQL LISTEN/NOTIFY). */
export interface Notifications {
  /**
   * Sends each of `payloads` on `channel` to every listener (this process's own included), all in
   * one statement: one round trip however many there are.
   */
  notify(channel: string, payloads: readonly string[]): Promise<void>;
  /**
   * Listens on `channel` on a dedicated connection, reconnecting (every second) when it drops;
   * `onGap` runs after a reconnect, since messages sent meanwhile are lost. Returns the stopper.
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    onGap: () => void,
  ): Promise<() => Promise<void>>;
}

/** `timers`: the reconnect waits' (the real clock's by default). */
export function pgNotifications(
  url: string,
  pool: pg.Pool,
  timers: Pick<Clock, "setTimeout" | "clearTimeout"> = systemClock,
): Notifications {
  return {
    async notify(channel, payloads) {
      if (payloads.length === 1) await pool.query("select pg_notify($1, $2)", [channel, payloads[0]]);
      else if (payloads.length > 1)
        await pool.query("select count(pg_notify($1, p)) from unnest($2::text[]) as p", [channel, payloads]);
    },
    async listen(channel, onMessage, onGap) {
      let stopped = false;
      let client: pg.Client | null = null;
      let retry: TimerHandle | undefined;
      const connect = async (): Promise<void> => {
        const c = connectPostgres(url);
        c.on("notification", (m) => {
          if (m.channel === channel && m.payload !== undefined) onMessage(m.payload);
        });
        const again = () => {
          if (stopped || client !== c) return;
          client = null;
          retry = timers.setTimeout(() => void reconnect(), 1000);
        };
        c.on("error", again);
        c.on("end", again);
        await c.connect();
        await c.query(`LISTEN "${channel.replace(/"/g, "")}"`);
        client = c;
      };
      const reconnect = async () => {
        if (stopped) return;
        try {
          await connect();
          onGap();
        } catch {
          retry = timers.setTimeout(() => void reconnect(), 1000);
        }
      };
      await connect();
      return async () => {
        stopped = true;
        timers.clearTimeout(retry);
        const c = client;
        client = null;
        await c?.end().catch(() => {});
      };
    },
  };
}
