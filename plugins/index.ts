/**
 * The built-in plugins, in the order their setup runs (and so the order their handlers run within
 * the same `order`). Listed explicitly: nothing registers itself by being imported.
 *
 * @module
 */
import type { Plugin } from "../src/plugin-api.ts";
import authRefresh from "./auth-refresh/index.ts";
import balancing from "./balancing/index.ts";
import firewall from "./firewall/index.ts";
import upstreamFailover from "./upstream-failover/index.ts";

export const builtinPlugins: readonly Plugin[] = [firewall, authRefresh, upstreamFailover, balancing];
