import type { AccessControl } from "../access/access-control.ts";
import type { GatewayServices } from "../plugin-host/api.ts";
import type { ActionApplier } from "../plugin-host/apply.ts";
import type { Dispatcher } from "../plugin-host/dispatch.ts";
import type { HookBus } from "../plugin-host/hooks.ts";
import type { PluginHost } from "../plugin-host/host.ts";
import type { Settings } from "../settings/schema.ts";
import type { Store } from "../store/store.ts";
import type { Logger } from "./logging.ts";

/** What a feature's routes get: explicit dependencies, never a global. */
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
  readonly clock: () => number;
  /** API keys, admin auth, firewall store, client address and locality. */
  readonly access: AccessControl;
}
