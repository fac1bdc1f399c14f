/**
 * One rule for request paths that the framework matches with or without a trailing slash.
 *
 * @module
 */

/**
 * `path` without its trailing slashes (`/a/` and `/a//` → `/a`); `/` alone (or only slashes) stays
 * `/`. A path without one is returned as is (no regex run).
 */
export function withoutTrailingSlashes(path: string): string {
  if (!path.endsWith("/")) return path;
  return path.replace(/\/+$/, "") || "/";
}
