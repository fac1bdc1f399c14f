/**
 * The error of a plugin that cannot be loaded or set up (bad module, duplicate name or provider,
 * missing required service, unknown hook): found at start-up, shown as one line, exit 2.
 *
 * @module
 */
export class PluginLoadError extends Error {
  override name = "PluginLoadError";
}
