/**
 * Replicas and the leader. Every gateway writes a heartbeat row (`cluster_replicas`) every
 * {@link HEARTBEAT_MS} and tries to take or renew the `leader` lease (`cluster_leases`), which
 * lapses {@link LEASE_MS} after its holder's last renewal: work that must happen once (background
 * token refresh, usage polling, retention) runs only on the leader, and when the leader dies
 * another replica takes over within LEASE_MS + HEARTBEAT_MS. A single gateway is always its own
 * leader. Lease times are the replicas' clocks: keep them in sync (NTP), as for any lease.
 *
 * @module
 */
import { hostname } from "node:os";
import type { Kysely } from "kysely";
import type { Clock, TimerHandle } from "../core/clock.ts";
import type { Database } from "../store/schema.ts";

export const HEARTBEAT_MS = 1_000;
export const LEASE_MS = 5_000;
/** A replica whose heartbeat is older than this is not listed as alive. */
export const ALIVE_MS = 3 * HEARTBEAT_MS + 1_000;
const LEADER = "leader";

export interface ReplicaInfo {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  readonly leader: boolean;
  /** The replica that answered. */
  readonly self: boolean;
}

export interface LeaderLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export class LeaderElection {
  readonly id = crypto.randomUUID();
  readonly name = `${hostname()}:${process.pid}`;
  readonly #startedAt: number;
  #leaderUntil = 0;
  #timer: TimerHandle | undefined;
  #beating: Promise<void> | null = null;
  #stopped = false;
  #failing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly time: Clock,
    private readonly version: string,
    private readonly log: LeaderLogger,
    private readonly heartbeatMs = HEARTBEAT_MS,
    private readonly leaseMs = LEASE_MS,
  ) {
    this.#startedAt = time.now();
  }

  /** True while this replica holds an unexpired leader lease (with a heartbeat of margin). */
  isLeader(): boolean {
    return this.time.now() < this.#leaderUntil - this.heartbeatMs;
  }

  /** First heartbeat (so leadership is known before background work starts), then every interval. */
  async start(): Promise<void> {
    await this.beat();
    const loop = () => {
      this.#timer = this.time.setTimeout(() => {
        this.#beating = this.beat().finally(() => {
          this.#beating = null;
          if (!this.#stopped) loop();
        });
      }, this.heartbeatMs);
    };
    loop();
  }

  /** Stops heart-beating and hands the lease over at once (no wait for it to lapse). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.time.clearTimeout(this.#timer);
    await this.#beating;
    this.#leaderUntil = 0;
    try {
      await this.db
        .deleteFrom("cluster_leases")
        .where("name", "=", LEADER)
        .where("holder", "=", this.id)
        .execute();
      await this.db.deleteFrom("cluster_replicas").where("id", "=", this.id).execute();
    } catch {
      // The store is going away too; the rows lapse by themselves.
    }
  }

  /** One heartbeat: the replica row, then take or renew the leader lease. */
  async beat(): Promise<void> {
    const now = this.time.now();
    const wasLeader = this.isLeader();
    try {
      await this.db
        .insertInto("cluster_replicas")
        .values({
          id: this.id,
          name: this.name,
          version: this.version,
          started_at: this.#startedAt,
          heartbeat_at: now,
        })
        .onConflict((oc) => oc.column("id").doUpdateSet({ heartbeat_at: now }))
        .execute();
      await this.db
        .insertInto("cluster_leases")
        .values({ name: LEADER, holder: this.id, acquired_at: now, expires_at: now + this.leaseMs })
        .onConflict((oc) =>
          oc
            .column("name")
            .doUpdateSet((eb) => ({
              holder: eb.ref("excluded.holder"),
              acquired_at: eb
                .case()
                .when("cluster_leases.holder", "=", this.id)
                .then(eb.ref("cluster_leases.acquired_at"))
                .else(eb.ref("excluded.acquired_at"))
                .end(),
              expires_at: eb.ref("excluded.expires_at"),
            }))
            .where((eb) =>
              eb.or([eb("cluster_leases.holder", "=", this.id), eb("cluster_leases.expires_at", "<=", now)]),
            ),
        )
        .execute();
      const lease = await this.db
        .selectFrom("cluster_leases")
        .select(["holder", "expires_at"])
        .where("name", "=", LEADER)
        .executeTakeFirst();
      this.#leaderUntil = lease?.holder === this.id ? lease.expires_at : 0;
      // Forget replicas gone for a long time (their rows only grow the list).
      await this.db
        .deleteFrom("cluster_replicas")
        .where("heartbeat_at", "<", now - 3600_000)
        .execute();
      if (this.#failing) this.log.info({ replica: this.id }, "cluster heartbeat restored");
      this.#failing = false;
    } catch (e) {
      // Keep the lease only as long as it is surely ours; then stop leading.
      if (!this.#failing)
        this.log.warn(
          { replica: this.id, err: e instanceof Error ? e.message : String(e) },
          "cluster heartbeat failed",
        );
      this.#failing = true;
    }
    const isLeader = this.isLeader();
    if (isLeader !== wasLeader)
      this.log.info(
        { replica: this.id, name: this.name, leader: isLeader },
        isLeader ? "became leader" : "no longer leader",
      );
  }

  /** Replicas alive now (heartbeat within {@link ALIVE_MS}), the leader marked. */
  async replicas(): Promise<ReplicaInfo[]> {
    const now = this.time.now();
    const [rows, lease] = await Promise.all([
      this.db
        .selectFrom("cluster_replicas")
        .selectAll()
        .where("heartbeat_at", ">", now - ALIVE_MS)
        .orderBy("started_at")
        .orderBy("id")
        .execute(),
      this.db
        .selectFrom("cluster_leases")
        .select(["holder", "expires_at"])
        .where("name", "=", LEADER)
        .executeTakeFirst(),
    ]);
    const leader = lease && lease.expires_at > now ? lease.holder : null;
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      version: r.version,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      leader: r.id === leader,
      self: r.id === this.id,
    }));
  }
}
