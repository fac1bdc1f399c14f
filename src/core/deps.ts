import type { AccessControl } from "../access/access-control.ts";
import type { AccountRepository } from "../accounts/repository.ts";
import type { SnapshotCache } from "../accounts/snapshot-cache.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { UiAssets } from "../dashboard/assets.ts";
import type { AdminEvents } from "../dashboard/events.ts";
import type { GatewayMetrics } from "../metrics/metrics.ts";
import type { OAuthFlows } from "../oauth/flows.ts";
import type { GatewayServices } from "../plugin-host/api.ts";
import type { ActionApplier } from "../plugin-host/apply.ts";
import type { Dispatcher } from "../plugin-host/dispatch.ts";
import type { HookBus } from "../plugin-host/hooks.ts";
import type { PluginHost } from "../plugin-host/host.ts";
import type { RequestLogWriter } from "../request-logs/writer.ts";
import type { RuntimeSettingsStore } from "../runtime-settings/store.ts";
import type { Settings } from "../settings/schema.ts";
import type { StickyStore } from "../sticky/store.ts";
import type { Store } from "../store/store.ts";
import type { RequestTracer } from "../tracing/tracing.ts";
import type { Clock, Random } from "./clock.ts";
import type { Logger } from "./logging.ts";

/**
 * What a feature's routes get: explicit dependencies, never a global. A kernel type (src/core/): the
 * composition root (src/app/) builds it, every feature reads it, nothing imports back into src/app/.
 */
export interface AppDeps {
  readonly settings: Readonly<Settings>;
  readonly store: Store;
  readonly log: Logger;
  readonly bus: HookBus;
  readonly applier: ActionApplier;
  readonly dispatcher: Dispatcher;
  readonly services: GatewayServices;
  readonly host: PluginHost;
  readonly version: string;
  /** Epoch ms now, from the injected clock (`time`). */
  readonly clock: () => number;
  /** The injected clock with its timers (a FakeClock in tests). */
  readonly time: Clock;
  /** The injected random source. */
  readonly random: Random;
  /** Runtime settings (`/api/settings`), env defaults plus stored overrides. */
  readonly runtimeSettings: RuntimeSettingsStore;
  /** Sticky session bindings (`/api/sticky-sessions`). */
  readonly sticky: StickyStore;
  /** Accounts: identity upsert, encrypted tokens, usage snapshots (the one writer of those columns). */
  readonly accounts: AccountRepository;
  /** Every account as a snapshot, cached (what `services.accounts.list()` answers). */
  readonly snapshots: SnapshotCache;
  /** Login flows in progress (browser and device code). */
  readonly oauth: OAuthFlows;
  /** Registers shutdown work of a core feature (flush a writer); runs after the plugins stopped. */
  onStop(fn: () => void | Promise<void>): void;
  /** The batched request-log writer (flushed on shutdown). */
  readonly requestLogs: RequestLogWriter;
  /** Prometheus metrics (`/metrics`); null when `CODEX_LB_METRICS_ENABLED=false`. */
  readonly metrics: GatewayMetrics | null;
  /** OpenTelemetry span export; null (nothing loaded) unless `CODEX_LB_OTEL_TRACES_ENDPOINT` is set. */
  readonly tracing: RequestTracer | null;
  /** API keys, admin auth, firewall store, client address and locality. */
  readonly access: AccessControl;
  /** This replica among the gateways sharing the database: leader, change feed, refresh claims. */
  readonly cluster: Cluster;
  /** Live admin events for `GET /api/events` (what changed, by topic). */
  readonly events: AdminEvents;
  /** The browser UI's embedded files; null in a gateway built without them. */
  readonly ui: UiAssets | null;
}
