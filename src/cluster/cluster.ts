/**
 * The gateway's place among its replicas: who it is, whether it leads, the change feed that keeps
 * other replicas' caches coherent, and the refresh claims. Built by the app for every store; on a
 * single SQLite gateway it is simply always the leader and its feed is silent.
 *
 * @module
 */
import type { Clock } from "../core/clock.ts";
import type { Store } from "../store/store.ts";
import { type ChangeFeed, createChangeFeed } from "./feed.ts";
import { LeaderElection, type LeaderLogger } from "./leader.ts";
import { RefreshClaims } from "./refresh-claims.ts";
import { GlobalStreamLeases } from "./stream-leases.ts";

export interface Cluster {
  readonly replicaId: string;
  readonly election: LeaderElection;
  readonly feed: ChangeFeed;
  readonly refreshClaims: RefreshClaims;
  /** The stream cap across replicas; only on PostgreSQL (one SQLite file has one gateway). */
  readonly streams: GlobalStreamLeases | null;
  isLeader(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCluster(opts: {
  readonly store: Store;
  readonly clock: Clock;
  readonly version: string;
  readonly log: LeaderLogger & { error(obj: object, msg?: string): void };
  readonly heartbeatMs?: number;
  readonly leaseMs?: number;
}): Cluster {
  const { store, clock, log } = opts;
  const election = new LeaderElection(store.db, clock, opts.version, log, opts.heartbeatMs, opts.leaseMs);
  const feed = createChangeFeed(election.id, store.notifications, (e) =>
    log.error({ err: e instanceof Error ? e.message : String(e) }, "cluster change feed failed"),
  );
  const streams =
    store.location.kind === "postgres" ? new GlobalStreamLeases(store.db, election.id, clock) : null;
  return {
    replicaId: election.id,
    streams,
    election,
    feed,
    refreshClaims: new RefreshClaims(store.db, election.id, () => clock.now()),
    isLeader: () => election.isLeader(),
    async start() {
      await feed.start();
      await election.start();
      streams?.start();
    },
    async stop() {
      await streams?.stop();
      await election.stop();
      await feed.stop();
    },
  };
}
